param($P)
# lkdh-params: delay_seconds
# Schedules a restart and returns at once, so the answer reaches the harness before the machine goes
# down; the harness then waits for another boot (boot-time.ps1, guest.py).
# shutdown.exe writes to stderr even when it succeeds on some builds; under the bootstrap's
# $ErrorActionPreference = 'Stop', Windows PowerShell 5.1 turns a native command's redirected stderr
# line (2>&1) into a terminating NativeCommandError. So stderr is read with Continue in force, in
# its own scope, and only the exit code decides.
$delay = 2
if ($null -ne $P.delay_seconds) {
    $delay = [int]$P.delay_seconds
}
if ($delay -lt 0 -or $delay -gt 600) {
    throw "restart-computer: delay_seconds must be 0..600, not $delay"
}
$shutdown = Join-Path $env:SystemRoot 'System32\shutdown.exe'
$arguments = @('/r', '/f', '/t', [string]$delay, '/d', 'p:4:1', '/c', 'lkdh: restart for a clean driver state')
$output = & {
    $ErrorActionPreference = 'Continue'
    & $shutdown @arguments 2>&1 | ForEach-Object { [string]$_ }
}
$exitCode = $LASTEXITCODE
if ($exitCode -ne 0) {
    throw ("restart-computer: shutdown.exe failed with exit code $exitCode`: " + (@($output) -join ' '))
}
[ordered]@{
    scheduled = $true
    delay_seconds = $delay
    output = (@($output) -join "`n")
}
