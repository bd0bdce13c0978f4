param($P)
# lkdh-params: action! driver flags boot_mode
# Driver Verifier for the test driver, so IRQL misuse becomes a deterministic bugcheck (F14).
# action: enable (verifier /standard, or /flags <n>, /driver <name>.sys), reset (verifier /reset),
# query (change nothing). Exit codes (verifier docs): 0 success, 1 error, 2 success with a reboot
# needed. /bootmode accepts persistent | resetonbootfail | resetonunusualshutdown | oneboot; the
# default resetonbootfail turns Verifier off if the machine then fails to boot, so a broken driver
# cannot leave the VM unbootable. The configured state is read from the registry (not localized);
# whether it is active in this boot comes from `verifier /query`.
# verifier.exe reports "reboot required" (exit 2) on every /standard or /flags call, even when nothing
# changes, so enable first compares the wanted settings with VerifyDrivers / VerifyDriverLevel and
# calls verifier only when they differ: a VM that already verifies the driver is not rebooted.
# /standard is the flag set 0x209BB (MicrosoftDocs "Driver Verifier options and rule classes":
# standard flags on Windows 10 and later), the value verifier writes to VerifyDriverLevel.
$action = [string]$P.action
$standardFlags = 0x209BB
$memoryKey = 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management'
$verifier = Join-Path $env:SystemRoot 'System32\verifier.exe'
$rebootRequired = $false
$outputs = New-Object System.Collections.Generic.List[string]

function Invoke-LkdhVerifier {
    param([string[]]$Arguments)
    $lines = @(& $verifier @Arguments)
    $code = $LASTEXITCODE
    $outputs.Add(($lines -join "`n"))
    if ($code -notin @(0, 2)) {
        throw ("verifier {0} failed with exit code {1}: {2}" -f ($Arguments -join ' '), $code, ($lines -join ' '))
    }
    return ($code -eq 2)
}

if ($action -eq 'enable') {
    $driver = [string]$P.driver
    if ($driver -notmatch '^[A-Za-z0-9_.-]+\.sys$') {
        throw "configure-verifier: driver must be a file name such as lkdh.sys, not '$driver'"
    }
    $bootMode = 'resetonbootfail'
    if ($P.boot_mode) {
        $bootMode = [string]$P.boot_mode
    }
    if ($bootMode -notin @('persistent', 'resetonbootfail', 'resetonunusualshutdown', 'oneboot')) {
        throw "configure-verifier: unknown boot_mode '$bootMode'"
    }
    $wantedFlags = $standardFlags
    if ($null -ne $P.flags -and [string]$P.flags -ne 'standard') {
        $wantedFlags = [int64]$P.flags
    }
    $current = Get-ItemProperty -LiteralPath $memoryKey
    $currentDrivers = @(([string]$current.VerifyDrivers).Split(' ', [StringSplitOptions]::RemoveEmptyEntries))
    $same = ($currentDrivers.Count -eq 1 -and $currentDrivers[0] -ieq $driver -and
        $null -ne $current.VerifyDriverLevel -and [int64]$current.VerifyDriverLevel -eq $wantedFlags)
    if (-not $same) {
        if ($wantedFlags -eq $standardFlags) {
            $rebootRequired = Invoke-LkdhVerifier @('/standard', '/driver', $driver)
        } else {
            $rebootRequired = Invoke-LkdhVerifier @('/flags', ('0x{0:X}' -f $wantedFlags), '/driver', $driver)
        }
        [void](Invoke-LkdhVerifier @('/bootmode', $bootMode))
    }
} elseif ($action -eq 'reset') {
    $rebootRequired = Invoke-LkdhVerifier @('/reset')
} elseif ($action -ne 'query') {
    throw "configure-verifier: action must be enable, reset or query, not '$action'"
}
$memoryManagement = Get-ItemProperty -LiteralPath $memoryKey
$verifyDrivers = @(([string]$memoryManagement.VerifyDrivers).Split(' ', [StringSplitOptions]::RemoveEmptyEntries))
$activeQuery = @(& $verifier /query) -join "`n"
$active = @()
foreach ($name in $verifyDrivers) {
    if ($activeQuery.IndexOf($name, [StringComparison]::OrdinalIgnoreCase) -ge 0) {
        $active += $name
    }
}
[ordered]@{
    reboot_required = [bool]$rebootRequired
    verifier_called = ($outputs.Count -gt 0)
    configured_drivers = @($verifyDrivers)
    configured_flags = $memoryManagement.VerifyDriverLevel
    active_drivers = @($active)
    query_output = $activeQuery
    command_output = @($outputs.ToArray())
}
