param($P)
# lkdh-params: inf_path! hardware_id! devcon_path start_timeout_seconds
# Installs the test driver package and proves the device started. pnputil /add-driver /install only
# updates devices that already exist; a root-enumerated test device may not, so when none is present
# and devcon_path (devcon.exe from the WDK) is given, devcon creates it. pnputil exit codes: 0 done,
# 3010 done but reboot required, 259 no matching device (or a better driver already installed).
# A device that did not start is reported (ok = false, with its CM_PROB code), not thrown: the caller
# decides whether that is a failure or the scenario under test.
# lkdh-include: _pnp-device.ps1
$inf = [string]$P.inf_path
$hardwareId = [string]$P.hardware_id
$timeout = 60
if ($null -ne $P.start_timeout_seconds) {
    $timeout = [int]$P.start_timeout_seconds
}
if (-not (Test-Path -LiteralPath $inf -PathType Leaf)) {
    throw "install-driver: no INF at '$inf'"
}
$pnputil = Join-Path $env:SystemRoot 'System32\pnputil.exe'
$pnputilOutput = @(& $pnputil /add-driver $inf /install)
$pnputilExit = $LASTEXITCODE
if ($pnputilExit -notin @(0, 259, 3010)) {
    throw ("pnputil /add-driver failed with exit code {0}: {1}" -f $pnputilExit, ($pnputilOutput -join ' | '))
}
$publishedName = ''
$published = [regex]::Match(($pnputilOutput -join "`n"), 'oem\d+\.inf', 'IgnoreCase')
if ($published.Success) {
    $publishedName = $published.Value
}
$devconExit = $null
$devconOutput = @()
$device = Get-LkdhDevice -HardwareId $hardwareId
if (-not $device.present -and $P.devcon_path) {
    $devconOutput = @(& ([string]$P.devcon_path) install $inf $hardwareId)
    $devconExit = $LASTEXITCODE
    if ($devconExit -notin @(0, 1)) {
        throw ("devcon install failed with exit code {0}: {1}" -f $devconExit, ($devconOutput -join ' | '))
    }
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
    reboot_required = ($pnputilExit -eq 3010 -or $devconExit -eq 1)
    pnputil_exit_code = $pnputilExit
    pnputil_output = ($pnputilOutput -join "`n")
    devcon_exit_code = $devconExit
    devcon_output = ($devconOutput -join "`n")
    device = $device
}
