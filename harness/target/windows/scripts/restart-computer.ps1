param($P)
# lkdh-params: delay_seconds
# Schedules a restart and returns at once, so the answer reaches the harness before the machine goes
# down; the harness then waits for a new LastBootUpTime (guest.py), as Ansible's win_reboot does.
$delay = 2
if ($null -ne $P.delay_seconds) {
    $delay = [int]$P.delay_seconds
}
if ($delay -lt 0 -or $delay -gt 600) {
    throw "restart-computer: delay_seconds must be 0..600, not $delay"
}
$os = Get-CimInstance -ClassName Win32_OperatingSystem
$shutdown = Join-Path $env:SystemRoot 'System32\shutdown.exe'
$output = & $shutdown @('/r', '/f', '/t', [string]$delay, '/d', 'p:4:1', '/c', 'lkdh: restart for a clean driver state') 2>&1
if ($LASTEXITCODE -ne 0) {
    throw ("restart-computer: shutdown.exe failed with exit code $LASTEXITCODE`: " + ($output -join ' '))
}
[ordered]@{
    scheduled = $true
    delay_seconds = $delay
    previous_boot_unix = ([DateTimeOffset]$os.LastBootUpTime.ToUniversalTime()).ToUnixTimeSeconds()
}
