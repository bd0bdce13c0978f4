param($P)
# lkdh-params: action! clear_wer_policy
# The machine settings that can make LkmdTelCreateReport return NULL, so Create fails with
# STATUS_UNSUCCESSFUL and no dump (F01, F09). action: query (report only) or apply (remove each
# refusal the harness may remove on a test VM). Keys, with their source:
# - HKLM\SYSTEM\CurrentControlSet\Control\CrashControl\FullLiveKernelReports (WER settings docs,
#   "WER live kernel reports settings"): ComponentThrottleThreshold / SystemThrottleThreshold (hours,
#   defaults 168 / 120; both 0 disables time-based throttling), FullLiveReportsMax (default 1;
#   0 disables full live dumps), LastFullLiveReport. These keys govern FULL live dumps only (kernel
#   memory dumps with user pages); the module's reports are minidump-sized triage dumps, which they
#   do not throttle, so clearing them is harmless hygiene, not what makes a Create succeed.
# - HKLM\SOFTWARE\Microsoft\Windows\Windows Error Reporting\FullLiveKernelReports: the same two
#   throttle values, where the Storage Spaces Direct troubleshooting article sets them.
# - HKLM\SYSTEM\CurrentControlSet\Control\CrashControl\ForceDumpsDisabled, value GuardedHost =
#   0x10000000: every dump, live dumps included, fails with STATUS_NOT_SUPPORTED (same article).
# - HKLM\SYSTEM\CurrentControlSet\Control\CrashControl\LiveKernelReports, LiveKernelReportsPath:
#   an NT path that moves the LiveKernelReports folder (reported, never changed).
# - Windows Error Reporting "Disabled" (policy key and WER key): inferred, not documented, to stop
#   live kernel reports as well; apply clears the WER value, and the policy value only when
#   clear_wer_policy is true.
# The throttling and ForceDumpsDisabled values take effect after a restart (same article): apply
# answers reboot_required, and provisioning restarts the machine before the first scenario. The
# one-report-per-minute limit of LkmdTelSubmitReport (F06) is not configurable.
$crashControl = 'HKLM:\SYSTEM\CurrentControlSet\Control\CrashControl'
$fullLiveSystem = Join-Path $crashControl 'FullLiveKernelReports'
$fullLiveWer = 'HKLM:\SOFTWARE\Microsoft\Windows\Windows Error Reporting\FullLiveKernelReports'
$forceDumpsDisabled = Join-Path $crashControl 'ForceDumpsDisabled'
$liveKernelReports = Join-Path $crashControl 'LiveKernelReports'
$werKey = 'HKLM:\SOFTWARE\Microsoft\Windows\Windows Error Reporting'
$werPolicyKey = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\Windows Error Reporting'
$action = [string]$P.action
if ($action -notin @('query', 'apply')) {
    throw "configure-live-dumps: action must be query or apply, not '$action'"
}

function Get-LkdhRegistryValue {
    param([string]$Key, [string]$Name)
    if (-not (Test-Path -LiteralPath $Key)) {
        return $null
    }
    return (Get-Item -LiteralPath $Key).GetValue($Name)
}

function Set-LkdhDword {
    param([string]$Key, [string]$Name, [int64]$Value)
    if (-not (Test-Path -LiteralPath $Key)) {
        New-Item -Path $Key -Force | Out-Null
    }
    New-ItemProperty -LiteralPath $Key -Name $Name -Value $Value -PropertyType DWord -Force | Out-Null
}

function Read-LkdhSettings {
    [ordered]@{
        crash_control_full_live = [ordered]@{
            component_throttle_threshold = Get-LkdhRegistryValue $fullLiveSystem 'ComponentThrottleThreshold'
            system_throttle_threshold = Get-LkdhRegistryValue $fullLiveSystem 'SystemThrottleThreshold'
            full_live_reports_max = Get-LkdhRegistryValue $fullLiveSystem 'FullLiveReportsMax'
        }
        wer_full_live = [ordered]@{
            component_throttle_threshold = Get-LkdhRegistryValue $fullLiveWer 'ComponentThrottleThreshold'
            system_throttle_threshold = Get-LkdhRegistryValue $fullLiveWer 'SystemThrottleThreshold'
        }
        force_dumps_disabled_guarded_host = Get-LkdhRegistryValue $forceDumpsDisabled 'GuardedHost'
        live_kernel_reports_path = Get-LkdhRegistryValue $liveKernelReports 'LiveKernelReportsPath'
        wer_disabled = Get-LkdhRegistryValue $werKey 'Disabled'
        wer_policy_disabled = Get-LkdhRegistryValue $werPolicyKey 'Disabled'
    }
}

function Get-LkdhRefusals {
    param($Settings)
    $refusals = @()
    $guardedHost = $Settings.force_dumps_disabled_guarded_host
    if ($null -ne $guardedHost -and ([int64]$guardedHost -band 0x10000000)) {
        $refusals += 'CrashControl\ForceDumpsDisabled\GuardedHost has 0x10000000: live dumps fail with STATUS_NOT_SUPPORTED'
    }
    if ($null -ne $Settings.crash_control_full_live.full_live_reports_max -and [int64]$Settings.crash_control_full_live.full_live_reports_max -eq 0) {
        $refusals += 'CrashControl\FullLiveKernelReports\FullLiveReportsMax is 0: the live dump feature is off'
    }
    if ($Settings.wer_disabled -eq 1) {
        $refusals += 'Windows Error Reporting\Disabled is 1 (inferred to stop live kernel reports)'
    }
    if ($Settings.wer_policy_disabled -eq 1) {
        $refusals += 'Policies\...\Windows Error Reporting\Disabled is 1 (inferred to stop live kernel reports)'
    }
    return , $refusals
}

$changed = New-Object System.Collections.Generic.List[string]
$rebootRequired = $false
if ($action -eq 'apply') {
    foreach ($key in @($fullLiveSystem, $fullLiveWer)) {
        foreach ($name in @('ComponentThrottleThreshold', 'SystemThrottleThreshold')) {
            if ((Get-LkdhRegistryValue $key $name) -ne 0) {
                Set-LkdhDword $key $name 0
                $changed.Add("$key\$name = 0")
                $rebootRequired = $true
            }
        }
    }
    $reportsMax = Get-LkdhRegistryValue $fullLiveSystem 'FullLiveReportsMax'
    if ($null -ne $reportsMax -and [int64]$reportsMax -eq 0) {
        Set-LkdhDword $fullLiveSystem 'FullLiveReportsMax' 1
        $changed.Add("$fullLiveSystem\FullLiveReportsMax = 1")
        $rebootRequired = $true
    }
    if ($null -ne (Get-LkdhRegistryValue $forceDumpsDisabled 'GuardedHost')) {
        Remove-ItemProperty -LiteralPath $forceDumpsDisabled -Name 'GuardedHost'
        $changed.Add("$forceDumpsDisabled\GuardedHost removed")
        $rebootRequired = $true
    }
    if ((Get-LkdhRegistryValue $werKey 'Disabled') -eq 1) {
        Set-LkdhDword $werKey 'Disabled' 0
        $changed.Add("$werKey\Disabled = 0")
    }
    if ($P.clear_wer_policy -eq $true -and $null -ne (Get-LkdhRegistryValue $werPolicyKey 'Disabled')) {
        Remove-ItemProperty -LiteralPath $werPolicyKey -Name 'Disabled'
        $changed.Add("$werPolicyKey\Disabled removed")
    }
}
$settings = Read-LkdhSettings
[ordered]@{
    settings = $settings
    refusals = Get-LkdhRefusals $settings
    changed = @($changed.ToArray())
    reboot_required = $rebootRequired
}
