param($P)
# lkdh-params: inf_path! hardware_id! lkdctl_path! old_inf_names start_timeout_seconds
# Installs the test driver package and proves the device started.
# 1. Each old_inf_names entry (oemNN.inf of a previous build) is removed from the driver store with
#    `pnputil /delete-driver oemNN.inf /uninstall /force`, so the new build cannot lose to it.
# 2. `pnputil /add-driver X.inf` stages the package. pnputil never creates a device: /install only
#    updates devices that exist, and exits 259 when none match (MicrosoftDocs pnputil-command-syntax,
#    pnputil-return-values: 0 done, 3010 done but reboot required, 259 no matching device).
# 3. `lkdctl --install-device X.inf HWID` creates the root-enumerated devnode unless it exists and
#    installs the staged driver on it (SetupDiCreateDeviceInfo + DIF_REGISTERDEVICE +
#    UpdateDriverForPlugAndPlayDevices, driver/lkdctl/devnode.c); idempotent.
# 4. A device that existed before is restarted (`pnputil /restart-device`, Windows 10 2004+) so the
#    new image is the loaded one; then the device is polled until it starts or the timeout passes.
# A device that did not start is reported (ok = false, with its CM_PROB code), not thrown: the caller
# decides, and fails prepare() when no reboot is pending to excuse it.
# lkdh-include: _pnp-device.ps1
$inf = [string]$P.inf_path
$hardwareId = [string]$P.hardware_id
$lkdctl = [string]$P.lkdctl_path
$timeout = 60
if ($null -ne $P.start_timeout_seconds) {
    $timeout = [int]$P.start_timeout_seconds
}
if (-not (Test-Path -LiteralPath $inf -PathType Leaf)) {
    throw "install-driver: no INF at '$inf'"
}
if (-not (Test-Path -LiteralPath $lkdctl -PathType Leaf)) {
    throw "install-driver: no lkdctl at '$lkdctl'"
}
$pnputil = Join-Path $env:SystemRoot 'System32\pnputil.exe'
$deleted = New-Object System.Collections.Generic.List[string]
foreach ($old in @($P.old_inf_names)) {
    if (-not $old) {
        continue
    }
    if ([string]$old -notmatch '^oem\d+\.inf$') {
        throw "install-driver: '$old' is not a published oemNN.inf name"
    }
    $deleteOutput = @(& $pnputil /delete-driver ([string]$old) /uninstall /force)
    if ($LASTEXITCODE -notin @(0, 3010)) {
        throw ("pnputil /delete-driver {0} failed with exit code {1}: {2}" -f $old, $LASTEXITCODE, ($deleteOutput -join ' | '))
    }
    $deleted.Add([string]$old)
}
$pnputilOutput = @(& $pnputil /add-driver $inf)
$pnputilExit = $LASTEXITCODE
if ($pnputilExit -notin @(0, 259, 3010)) {
    throw ("pnputil /add-driver failed with exit code {0}: {1}" -f $pnputilExit, ($pnputilOutput -join ' | '))
}
$publishedName = ''
$published = [regex]::Match(($pnputilOutput -join "`n"), 'oem\d+\.inf', 'IgnoreCase')
if ($published.Success) {
    $publishedName = $published.Value
}
$lkdctlLine = @(& $lkdctl --install-device $inf $hardwareId) -join ''
$lkdctlExit = $LASTEXITCODE
$deviceInstall = $null
try {
    $deviceInstall = ConvertFrom-Json -InputObject $lkdctlLine
} catch {
    throw "install-driver: lkdctl --install-device printed no JSON (exit $lkdctlExit): $lkdctlLine"
}
if ($lkdctlExit -ne 0) {
    throw ("install-driver: lkdctl --install-device failed at {0} (Win32 error {1})" -f $deviceInstall.step, $deviceInstall.win32_error)
}
$restartExit = $null
if ($deviceInstall.device -eq 'existing' -and -not $deviceInstall.reboot_required) {
    [void](& $pnputil /restart-device ([string]$deviceInstall.instance_id))
    $restartExit = $LASTEXITCODE
}
$deadline = (Get-Date).AddSeconds($timeout)
do {
    $device = Get-LkdhDevice -HardwareId $hardwareId
    if ($device.present -and $device.problem_code -eq 0) {
        break
    }
    Start-Sleep -Seconds 1
} while ((Get-Date) -lt $deadline)
[ordered]@{
    ok = ($device.present -and $device.problem_code -eq 0 -and $device.status -eq 'OK')
    published_name = $publishedName
    deleted_inf_names = @($deleted.ToArray())
    reboot_required = ($pnputilExit -eq 3010 -or [bool]$deviceInstall.reboot_required)
    pnputil_exit_code = $pnputilExit
    pnputil_output = ($pnputilOutput -join "`n")
    device_install = $deviceInstall
    restart_exit_code = $restartExit
    device = $device
}
