param($P)
# lkdh-params:
# When the machine last booted. The harness reads it before and after a reboot (or a crash) and waits
# until it changes, as Ansible's win_reboot does: a reachable machine alone does not prove it rebooted.
$os = Get-CimInstance -ClassName Win32_OperatingSystem
$bootUtc = $os.LastBootUpTime.ToUniversalTime()
$nowUtc = (Get-Date).ToUniversalTime()
[ordered]@{
    last_boot_utc = $bootUtc.ToString('o')
    last_boot_unix = ([DateTimeOffset]$bootUtc).ToUnixTimeSeconds()
    now_utc = $nowUtc.ToString('o')
    uptime_seconds = [int64]($nowUtc - $bootUtc).TotalSeconds
}
