param($P)
# lkdh-params:
# Who and what the harness is talking to: `lkdh target check` prints it, and the run record keeps it
# (environment.properties); os_architecture (AMD64, ARM64) is the machine type the driver package
# must be built for. Elevation matters twice: installing drivers needs it, and the
# IOCTL refuses a caller without an elevated admin token (F26).
$identity = [Security.Principal.WindowsIdentity]::GetCurrent()
$principal = New-Object Security.Principal.WindowsPrincipal -ArgumentList $identity
$currentVersion = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
$build = [string]$currentVersion.CurrentBuild
if ($null -ne $currentVersion.UBR) {
    $build = $build + '.' + [string]$currentVersion.UBR
}
[ordered]@{
    computer_name = $env:COMPUTERNAME
    user = $identity.Name
    elevated = $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
    powershell_version = $PSVersionTable.PSVersion.ToString()
    powershell_edition = [string]$PSVersionTable.PSEdition
    language_mode = [string]$ExecutionContext.SessionState.LanguageMode
    os_product = [string]$currentVersion.ProductName
    os_display_version = [string]$currentVersion.DisplayVersion
    os_build = $build
    os_version = [Environment]::OSVersion.Version.ToString()
    is_64bit = [Environment]::Is64BitOperatingSystem
    os_architecture = [string]$env:PROCESSOR_ARCHITECTURE
    hyperv_module = [bool](Get-Module -ListAvailable -Name Hyper-V)
}
