param($P)
# lkdh-params: hardware_id! action! names values restart start_timeout_seconds
# The test driver's module configuration: values under its device's hardware key ("Device
# Parameters"), which the driver reads at every device start (driver/LkdhTestDriver/Config.c; the
# value names come from driver/include/lkdh_control.h through the harness, as `names`).
# action: query (the values of `names` now) or apply (write `values`, a map of name to
# {type: String|DWord, data}, or to null to delete the value; then, with `restart`, restart the device).
# The key is opened the documented way for user mode, CM_Open_DevNode_Key with CM_REGISTRY_HARDWARE
# (MicrosoftDocs windows-driver-docs install/opening-a-device-s-hardware-key.md: a hardware key is
# never opened by its path, which may change between Windows versions).
# A written value reaches the driver only at its next start. `pnputil /restart-device <instance id>`
# (Windows 10 2004+, devtest/pnputil-command-syntax.md) exits 0 when the device restarted, and 3010
# (ERROR_SUCCESS_REBOOT_REQUIRED, devtest/pnputil-return-values.md) when it could not be restarted
# without a reboot: then reboot_required is true and the caller reboots. Any other exit code throws
# with pnputil's output. After a restart the device is polled until it has started again.
# lkdh-include: _pnp-device.ps1
$action = [string]$P.action
if ($action -notin @('query', 'apply')) {
    throw "device-parameters: action must be query or apply, not '$action'"
}
$timeout = 60
if ($null -ne $P.start_timeout_seconds) {
    $timeout = [int]$P.start_timeout_seconds
}
$device = Get-LkdhDevice -HardwareId ([string]$P.hardware_id)
if (-not $device.present) {
    throw ("device-parameters: no device with hardware id '{0}'" -f $P.hardware_id)
}
$instanceId = [string]$device.instance_id
# C# signatures of cfgmgr32 (constant text: no value of $P is in it).
$cfgmgr32 = @(
    '[DllImport("cfgmgr32.dll", CharSet = CharSet.Unicode)]',
    'public static extern int CM_Locate_DevNodeW(out uint devInst, string deviceId, uint flags);',
    '[DllImport("cfgmgr32.dll")]',
    'public static extern int CM_Open_DevNode_Key(uint devInst, uint samDesired, uint hardwareProfile,',
    '    uint disposition, out Microsoft.Win32.SafeHandles.SafeRegistryHandle key, uint flags);'
) -join "`n"
Add-Type -Namespace Lkdh -Name CfgMgr32 -MemberDefinition $cfgmgr32
$devInst = [uint32]0
$cr = [Lkdh.CfgMgr32]::CM_Locate_DevNodeW([ref]$devInst, $instanceId, 0)
if ($cr -ne 0) {
    throw ("device-parameters: CM_Locate_DevNode({0}) failed with CONFIGRET {1}" -f $instanceId, $cr)
}
$access = 0x20019                      # KEY_READ
$disposition = 1                       # RegDisposition_OpenExisting
if ($action -eq 'apply') {
    $access = 0x20019 -bor 0x0002      # KEY_READ | KEY_SET_VALUE
    $disposition = 0                   # RegDisposition_OpenAlways: create Device Parameters if missing
}
$handle = $null
$cr = [Lkdh.CfgMgr32]::CM_Open_DevNode_Key($devInst, $access, 0, $disposition, [ref]$handle, 0)  # CM_REGISTRY_HARDWARE
$key = $null
if ($cr -eq 0) {
    $key = [Microsoft.Win32.RegistryKey]::FromHandle($handle)
} elseif ($action -eq 'apply' -or $cr -ne 0x25) {  # CR_NO_SUCH_REGISTRY_KEY: no parameters yet
    throw ("device-parameters: CM_Open_DevNode_Key({0}, CM_REGISTRY_HARDWARE) failed with CONFIGRET {1}" -f $instanceId, $cr)
}

function Get-LkdhParameter {
    param([string]$Name)
    if ($null -eq $key -or $null -eq $key.GetValue($Name, $null, 'DoNotExpandEnvironmentNames')) {
        return $null
    }
    $kind = [string]$key.GetValueKind($Name)
    $data = $null
    if ($kind -in @('String', 'DWord')) {
        $data = $key.GetValue($Name, $null, 'DoNotExpandEnvironmentNames')
    }
    [ordered]@{ type = $kind; data = $data }
}

$names = New-Object System.Collections.Generic.List[string]
foreach ($name in @($P.names)) {
    if ($name) {
        $names.Add([string]$name)
    }
}
$changed = New-Object System.Collections.Generic.List[string]
if ($action -eq 'apply' -and $null -ne $P.values) {
    foreach ($entry in $P.values.PSObject.Properties) {
        $name = [string]$entry.Name
        if ($name -notmatch '^[A-Za-z][A-Za-z0-9]{0,63}$') {
            throw "device-parameters: '$name' is not a parameter name"
        }
        if (-not $names.Contains($name)) {
            $names.Add($name)
        }
        $wanted = $entry.Value
        if ($null -eq $wanted) {
            if ($null -ne $key.GetValue($name, $null, 'DoNotExpandEnvironmentNames')) {
                $key.DeleteValue($name, $false)
                $changed.Add($name)
            }
            continue
        }
        if ([string]$wanted.type -eq 'String') {
            $key.SetValue($name, [string]$wanted.data, [Microsoft.Win32.RegistryValueKind]::String)
        } elseif ([string]$wanted.type -eq 'DWord') {
            $key.SetValue($name, [int32][uint32]$wanted.data, [Microsoft.Win32.RegistryValueKind]::DWord)
        } else {
            throw ("device-parameters: {0}: type must be String or DWord, not '{1}'" -f $name, $wanted.type)
        }
        $changed.Add($name)
    }
}
$values = [ordered]@{}
foreach ($name in $names) {
    $values[$name] = Get-LkdhParameter -Name $name
}
if ($null -ne $key) {
    $key.Close()
}
$restartExit = $null
$restartOutput = ''
$rebootRequired = $false
if ($action -eq 'apply' -and $P.restart) {
    $pnputil = Join-Path $env:SystemRoot 'System32\pnputil.exe'
    $restartOutput = @(& $pnputil /restart-device $instanceId) -join "`n"
    $restartExit = $LASTEXITCODE
    if ($restartExit -eq 3010) {
        $rebootRequired = $true
    } elseif ($restartExit -ne 0) {
        throw ("pnputil /restart-device {0} failed with exit code {1}: {2}" -f $instanceId, $restartExit, $restartOutput)
    } else {
        $deadline = (Get-Date).AddSeconds($timeout)
        do {
            $device = Get-LkdhDevice -HardwareId ([string]$P.hardware_id)
            if ($device.present -and $device.problem_code -eq 0) {
                break
            }
            Start-Sleep -Seconds 1
        } while ((Get-Date) -lt $deadline)
    }
}
[ordered]@{
    instance_id = $instanceId
    values = $values
    changed = @($changed.ToArray())
    restart_exit_code = $restartExit
    restart_output = $restartOutput
    reboot_required = $rebootRequired
    device = $device
}
