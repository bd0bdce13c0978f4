param($P)
# lkdh-params:
# Which boot the machine is in, told by clock-independent facts: the boot sequence number Windows
# keeps in the registry (Memory Management\PrefetchParameters\BootId, incremented at every boot) and
# the time since boot from the performance counter (QueryPerformanceCounter, which counts from boot
# and never follows the wall clock). LastBootUpTime is reported for people only: it is computed as
# now - uptime, so it moves by a second without a reboot and jumps with every clock correction
# (windows_exporter#74, beats#12591); the harness does not compare it.
$os = Get-CimInstance -ClassName Win32_OperatingSystem
$bootUtc = $os.LastBootUpTime.ToUniversalTime()
$prefetch = 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management\PrefetchParameters'
$bootId = $null
if (Test-Path -LiteralPath $prefetch) {
    $value = (Get-Item -LiteralPath $prefetch).GetValue('BootId')
    if ($null -ne $value) {
        $bootId = [int64]$value
    }
}
$uptimeMs = [int64]([Diagnostics.Stopwatch]::GetTimestamp() * 1000.0 / [Diagnostics.Stopwatch]::Frequency)
[ordered]@{
    boot_id = $bootId
    uptime_ms = $uptimeMs
    last_boot_utc = $bootUtc.ToString('o')
    last_boot_unix = ([DateTimeOffset]$bootUtc).ToUnixTimeSeconds()
    now_utc = (Get-Date).ToUniversalTime().ToString('o')
}
