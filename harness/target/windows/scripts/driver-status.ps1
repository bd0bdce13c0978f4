param($P)
# lkdh-params: service_name! hardware_id
# Is the test driver's service running, is its device started, and which build is loaded (the
# service image's path, FileVersion and SHA-256, the device's oemNN.inf)? Answers `lkdh target check`,
# and lets provisioning reinstall when the loaded build is not the package's.
# lkdh-include: _pnp-device.ps1
$serviceName = [string]$P.service_name
$service = @(Get-CimInstance -ClassName Win32_SystemDriver | Where-Object { $_.Name -eq $serviceName })
$serviceInfo = [ordered]@{ exists = $false; state = ''; start_mode = ''; path = ''; file_version = ''; image_sha256 = '' }
if ($service.Count -gt 0) {
    $imagePath = [string]$service[0].PathName
    if ($imagePath -match '^\\SystemRoot\\') {
        $imagePath = Join-Path $env:SystemRoot $imagePath.Substring(12)
    } elseif ($imagePath -match '^\\\?\?\\') {
        $imagePath = $imagePath.Substring(4)
    } elseif ($imagePath -and -not [IO.Path]::IsPathRooted($imagePath)) {
        $imagePath = Join-Path $env:SystemRoot $imagePath
    }
    $fileVersion = ''
    $imageHash = ''
    if ($imagePath -and (Test-Path -LiteralPath $imagePath -PathType Leaf)) {
        $fileVersion = [string](Get-Item -LiteralPath $imagePath -Force).VersionInfo.FileVersion
        $imageHash = (Get-FileHash -LiteralPath $imagePath -Algorithm SHA256).Hash.ToLowerInvariant()
    }
    $serviceInfo = [ordered]@{
        exists = $true
        state = [string]$service[0].State
        start_mode = [string]$service[0].StartMode
        path = $imagePath
        file_version = $fileVersion
        image_sha256 = $imageHash
    }
}
$deviceInfo = $null
if ($P.hardware_id) {
    $deviceInfo = Get-LkdhDevice -HardwareId ([string]$P.hardware_id)
    $deviceInfo.driver_version = ''
    $deviceInfo.inf_name = ''
    if ($deviceInfo.present) {
        $instanceId = $deviceInfo.instance_id
        $signed = @(Get-CimInstance -ClassName Win32_PnPSignedDriver | Where-Object { $_.DeviceID -eq $instanceId })
        if ($signed.Count -gt 0) {
            $deviceInfo.driver_version = [string]$signed[0].DriverVersion
            $deviceInfo.inf_name = [string]$signed[0].InfName
        }
    }
}
[ordered]@{ service = $serviceInfo; device = $deviceInfo }
