<#
.SYNOPSIS
Makes a fresh Windows 10/11 or Windows Server VM ready for `pytest -m hardware` (vm/README.md).

.DESCRIPTION
Run once as an administrator (autounattend.xml runs it at first logon; Packer runs it again with the
standard user's password). Every step checks the current state first, so a re-run converges and
changes nothing that is already right. What it sets, and why:
  - WinRM over HTTPS only (5986) with a generated self-signed certificate; Basic auth and unencrypted
    traffic off, Negotiate (NTLM/Kerberos) on. It prints the certificate's SHA-256 fingerprint and
    exports the .cer, so the harness can pin or trust it (TLS validation stays on).
  - OpenSSH Server (automatic start, firewall rule, administrators_authorized_keys from a parameter)
    so large files go over SFTP.
  - Test signing on, so the test-signed driver loads (needs Secure Boot off).
  - Crash dumps: small memory dump into %SystemRoot%\Minidump, automatic reboot, a page file the dump
    can be written through. Live dumps: the LiveKernelReports folder exists and no setting refuses a
    live dump (F09; harness/target/windows/scripts/configure-live-dumps.ps1 checks the same at run time).
  - No sleep or hibernation, so an idle VM stays reachable.
  - A standard (non-admin) user for the scenarios that need a non-admin caller (F26), allowed to log
    on as a batch job so the harness can run lkdctl as that user through a scheduled task.
Without -StandardUserPassword the user step is skipped with a warning (first logon has no secret to
give; Packer's provisioner re-runs this script with it).

.PARAMETER StandardUserPassword
Password of the standard user, as a SecureString (never as plain text on a command line or in a file).

.PARAMETER AdministratorsAuthorizedKeys
OpenSSH public keys (one per line) allowed to log on as an administrator.
#>
[CmdletBinding()]
param(
    [SecureString] $StandardUserPassword,
    [string] $StandardUserName = 'lkdh-user',
    [string[]] $AdministratorsAuthorizedKeys = @(),
    [string] $OutputFolder = 'C:\lkdh',
    [string[]] $DnsNames = @($env:COMPUTERNAME),
    [switch] $SkipOpenSsh
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version 2.0

$CertificateFriendlyName = 'lkdh WinRM HTTPS'
$AdministratorsSid = 'S-1-5-32-544'
$UsersSid = 'S-1-5-32-545'
$SystemSid = 'S-1-5-18'

function Write-Step {
    param([string]$Message)
    Write-Host ('[lkdh bootstrap] ' + $Message)
}

function Assert-Administrator {
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object Security.Principal.WindowsPrincipal -ArgumentList $identity
    if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw 'bootstrap.ps1 must run as an administrator (elevated).'
    }
}

function Set-RegistryDword {
    param([string]$Key, [string]$Name, [int64]$Value)
    if (-not (Test-Path -LiteralPath $Key)) {
        New-Item -Path $Key -Force | Out-Null
    }
    $current = (Get-Item -LiteralPath $Key).GetValue($Name)
    if ($current -ne $Value) {
        New-ItemProperty -LiteralPath $Key -Name $Name -Value $Value -PropertyType DWord -Force | Out-Null
        Write-Step "set $Key\$Name = $Value"
    }
}

function Get-Sha256Fingerprint {
    param([Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)
    $sha256 = [Security.Cryptography.SHA256]::Create()
    try {
        return ([BitConverter]::ToString($sha256.ComputeHash($Certificate.RawData)) -replace '-', '')
    } finally {
        $sha256.Dispose()
    }
}

function Get-WinRmCertificate {
    # Reuse the certificate of an earlier run while it has at least 30 days left, so a re-run keeps
    # the fingerprint the harness configuration already pins.
    $threshold = (Get-Date).AddDays(30)
    $existing = @(Get-ChildItem -Path 'Cert:\LocalMachine\My' |
        Where-Object { $_.FriendlyName -eq $CertificateFriendlyName -and $_.NotAfter -gt $threshold } |
        Sort-Object -Property NotAfter -Descending)
    if ($existing.Count -gt 0) {
        return $existing[0]
    }
    Write-Step 'creating a self-signed WinRM certificate'
    return New-SelfSignedCertificate -DnsName $DnsNames -CertStoreLocation 'Cert:\LocalMachine\My' `
        -FriendlyName $CertificateFriendlyName -KeyExportPolicy NonExportable -KeyLength 3072 `
        -NotAfter (Get-Date).AddYears(5)
}

function Set-FirewallRule {
    param([string]$Name, [string]$DisplayName, [int]$Port)
    if (-not (Get-NetFirewallRule -Name $Name -ErrorAction SilentlyContinue)) {
        New-NetFirewallRule -Name $Name -DisplayName $DisplayName -Direction Inbound -Protocol TCP `
            -LocalPort $Port -Action Allow -Profile Any | Out-Null
        Write-Step "firewall: allowed TCP $Port ($DisplayName)"
    }
}

function Enable-WinRmHttps {
    $service = Get-Service -Name WinRM
    if ($service.StartType -ne 'Automatic') {
        Set-Service -Name WinRM -StartupType Automatic
    }
    if ($service.Status -ne 'Running') {
        Start-Service -Name WinRM
    }
    $certificate = Get-WinRmCertificate
    $listeners = @(Get-ChildItem -Path 'WSMan:\localhost\Listener')
    foreach ($listener in $listeners) {
        $keys = @($listener.Keys)
        $transport = ($keys | Where-Object { $_ -like 'Transport=*' }) -replace '^Transport=', ''
        $thumbprint = @(Get-ChildItem -Path $listener.PSPath | Where-Object { $_.Name -eq 'CertificateThumbprint' } | ForEach-Object { $_.Value })
        $wanted = $transport -eq 'HTTPS' -and $thumbprint -contains $certificate.Thumbprint
        if (-not $wanted) {
            Write-Step "removing WinRM listener $($keys -join ', ')"
            Remove-Item -Path $listener.PSPath -Recurse -Force
        }
    }
    if (-not (@(Get-ChildItem -Path 'WSMan:\localhost\Listener') | Where-Object { @($_.Keys) -contains 'Transport=HTTPS' })) {
        New-Item -Path 'WSMan:\localhost\Listener' -Transport HTTPS -Address * `
            -CertificateThumbPrint $certificate.Thumbprint -Force | Out-Null
        Write-Step 'WinRM HTTPS listener on 5986'
    }
    Set-Item -Path 'WSMan:\localhost\Service\Auth\Basic' -Value $false
    Set-Item -Path 'WSMan:\localhost\Service\Auth\Negotiate' -Value $true
    Set-Item -Path 'WSMan:\localhost\Service\Auth\CredSSP' -Value $false
    Set-Item -Path 'WSMan:\localhost\Service\AllowUnencrypted' -Value $false
    # Uploads go in base64 chunks over WinRM when SFTP is missing; a larger envelope means fewer calls.
    Set-Item -Path 'WSMan:\localhost\MaxEnvelopeSizekb' -Value 8192
    # A local administrator other than the built-in one only gets a full (elevated) token over the
    # network with this set; without it, driver installation fails with access denied.
    Set-RegistryDword 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System' 'LocalAccountTokenFilterPolicy' 1
    Set-FirewallRule -Name 'LKDH-WinRM-HTTPS-In' -DisplayName 'lkdh WinRM over HTTPS' -Port 5986

    [void][IO.Directory]::CreateDirectory($OutputFolder)
    $cerPath = Join-Path $OutputFolder 'winrm-https.cer'
    [IO.File]::WriteAllBytes($cerPath, $certificate.RawData)
    $fingerprint = Get-Sha256Fingerprint $certificate
    $summary = [ordered]@{
        sha256_fingerprint = $fingerprint
        sha1_thumbprint = $certificate.Thumbprint
        dns_names = @($DnsNames)
        not_after_utc = $certificate.NotAfter.ToUniversalTime().ToString('o')
        certificate_file = $cerPath
    }
    $summaryJson = ConvertTo-Json -InputObject $summary
    [IO.File]::WriteAllText((Join-Path $OutputFolder 'winrm-https.json'), $summaryJson)
    Write-Step "WinRM HTTPS certificate SHA-256 fingerprint: $fingerprint (exported to $cerPath)"
}

function Enable-OpenSshServer {
    $capability = @(Get-WindowsCapability -Online -Name 'OpenSSH.Server*')
    if ($capability.Count -eq 0) {
        Write-Warning 'OpenSSH Server is not offered on this Windows build; the harness falls back to WinRM transfers.'
        return
    }
    if ($capability[0].State -ne 'Installed') {
        Write-Step 'installing OpenSSH Server (needs Windows Update or a Features-on-Demand source)'
        try {
            Add-WindowsCapability -Online -Name $capability[0].Name | Out-Null
        } catch {
            # Not fatal: without SFTP the harness copies files in chunks over WinRM (slower, same result).
            Write-Warning ('OpenSSH Server could not be installed (' + $_.Exception.Message + '); re-run later to retry.')
            return
        }
    }
    Set-Service -Name sshd -StartupType Automatic
    if ((Get-Service -Name sshd).Status -ne 'Running') {
        Start-Service -Name sshd
    }
    Set-FirewallRule -Name 'LKDH-OpenSSH-In' -DisplayName 'lkdh OpenSSH Server' -Port 22
    if ($AdministratorsAuthorizedKeys.Count -gt 0) {
        $keysFile = Join-Path $env:ProgramData 'ssh\administrators_authorized_keys'
        $content = ($AdministratorsAuthorizedKeys | ForEach-Object { $_.Trim() } | Where-Object { $_ }) -join "`n"
        [IO.File]::WriteAllText($keysFile, $content + "`n", (New-Object Text.UTF8Encoding $false))
        # sshd ignores this file unless only Administrators and SYSTEM can touch it.
        $acl = New-Object Security.AccessControl.FileSecurity
        $acl.SetAccessRuleProtection($true, $false)
        foreach ($sid in @($AdministratorsSid, $SystemSid)) {
            $identity = New-Object Security.Principal.SecurityIdentifier -ArgumentList $sid
            $rule = New-Object Security.AccessControl.FileSystemAccessRule -ArgumentList $identity, 'FullControl', 'Allow'
            $acl.AddAccessRule($rule)
        }
        Set-Acl -LiteralPath $keysFile -AclObject $acl
        Write-Step "administrators_authorized_keys: $($AdministratorsAuthorizedKeys.Count) key(s)"
    }
}

function Enable-TestSigning {
    $startOptions = [string](Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control').SystemStartOptions
    $bcdedit = Join-Path $env:SystemRoot 'System32\bcdedit.exe'
    $output = @(& $bcdedit /set '{current}' testsigning on)
    if ($LASTEXITCODE -ne 0) {
        throw ('bcdedit /set testsigning on failed (is Secure Boot on? turn it off in the VM firmware): ' + ($output -join ' '))
    }
    if ($startOptions -notmatch '\bTESTSIGNING\b') {
        Write-Step 'test signing configured: takes effect after the next reboot'
    }
    # A driver that bugchecks during boot must not strand the VM in Automatic Repair: boot on
    # regardless of failed boots (bcdedit /set bootstatuspolicy, BCD boot status policy docs).
    $policy = @(& $bcdedit /set '{current}' bootstatuspolicy ignoreallfailures)
    if ($LASTEXITCODE -ne 0) {
        throw ('bcdedit /set bootstatuspolicy ignoreallfailures failed: ' + ($policy -join ' '))
    }
}

function Set-DumpConfiguration {
    $crashControl = 'HKLM:\SYSTEM\CurrentControlSet\Control\CrashControl'
    # 3 = small memory dump (minidump); one file per crash, named by date and counter, never overwritten.
    Set-RegistryDword $crashControl 'CrashDumpEnabled' 3
    Set-RegistryDword $crashControl 'AutoReboot' 1
    Set-RegistryDword $crashControl 'LogEvent' 1
    Set-RegistryDword $crashControl 'Overwrite' 1
    Set-RegistryDword $crashControl 'MinidumpsCount' 1000
    $minidumpDir = (Get-Item -LiteralPath $crashControl).GetValue('MinidumpDir', $null, 'DoNotExpandEnvironmentNames')
    if ($minidumpDir -ne '%SystemRoot%\Minidump') {
        New-ItemProperty -LiteralPath $crashControl -Name 'MinidumpDir' -Value '%SystemRoot%\Minidump' -PropertyType ExpandString -Force | Out-Null
        Write-Step 'minidumps go to %SystemRoot%\Minidump'
    }
    foreach ($folder in @('Minidump', 'LiveKernelReports')) {
        [void][IO.Directory]::CreateDirectory((Join-Path $env:SystemRoot $folder))
    }
    # A dump is written through the page file on the boot volume: keep it system-managed.
    $computer = Get-CimInstance -ClassName Win32_ComputerSystem
    if (-not $computer.AutomaticManagedPagefile) {
        Set-CimInstance -InputObject $computer -Property @{ AutomaticManagedPagefile = $true }
        Write-Step 'page file: system managed'
    }
    # Nothing may refuse a live dump (F09): no time-based throttling, no ForceDumpsDisabled.
    foreach ($key in @((Join-Path $crashControl 'FullLiveKernelReports'), 'HKLM:\SOFTWARE\Microsoft\Windows\Windows Error Reporting\FullLiveKernelReports')) {
        Set-RegistryDword $key 'ComponentThrottleThreshold' 0
        Set-RegistryDword $key 'SystemThrottleThreshold' 0
    }
    $forceDumpsDisabled = Join-Path $crashControl 'ForceDumpsDisabled'
    if ((Test-Path -LiteralPath $forceDumpsDisabled) -and $null -ne (Get-Item -LiteralPath $forceDumpsDisabled).GetValue('GuardedHost')) {
        Remove-ItemProperty -LiteralPath $forceDumpsDisabled -Name 'GuardedHost'
        Write-Step 'removed CrashControl\ForceDumpsDisabled\GuardedHost'
    }
}

function Disable-Sleep {
    # A client SKU sleeps after idle minutes; a sleeping VM looks like a dead transport to the harness.
    $powercfg = Join-Path $env:SystemRoot 'System32\powercfg.exe'
    foreach ($setting in @('standby-timeout-ac', 'hibernate-timeout-ac', 'monitor-timeout-ac')) {
        & $powercfg /change $setting 0 | Out-Null
    }
    & $powercfg /hibernate off | Out-Null
}

function Grant-BatchLogonRight {
    param([Security.Principal.SecurityIdentifier]$Sid)
    # secedit is the in-box way to edit user rights; it replaces a right's whole member list, so the
    # current members are exported first and kept.
    $work = Join-Path $env:TEMP ('lkdh-secedit-' + [guid]::NewGuid().ToString('N'))
    [void][IO.Directory]::CreateDirectory($work)
    try {
        $exported = Join-Path $work 'export.inf'
        & secedit.exe /export /cfg $exported /areas USER_RIGHTS | Out-Null
        $line = @(Get-Content -LiteralPath $exported | Where-Object { $_ -like 'SeBatchLogonRight*' })
        $members = @()
        if ($line.Count -gt 0) {
            $members = @(($line[0] -split '=', 2)[1].Split(',') | ForEach-Object { $_.Trim() } | Where-Object { $_ })
        }
        $entry = '*' + $Sid.Value
        if ($members -contains $entry) {
            return
        }
        $members += $entry
        $template = Join-Path $work 'batch.inf'
        $lines = @('[Unicode]', 'Unicode=yes', '[Version]', 'signature="$CHICAGO$"', 'Revision=1', '[Privilege Rights]', ('SeBatchLogonRight = ' + ($members -join ',')))
        Set-Content -LiteralPath $template -Value $lines -Encoding Unicode
        & secedit.exe /configure /db (Join-Path $work 'batch.sdb') /cfg $template /areas USER_RIGHTS | Out-Null
        if ($LASTEXITCODE -ne 0) {
            throw "secedit could not grant SeBatchLogonRight (exit $LASTEXITCODE)"
        }
        Write-Step 'granted "Log on as a batch job" to the standard user'
    } finally {
        Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
    }
}

function Set-StandardUser {
    if ($null -eq $StandardUserPassword) {
        Write-Warning "no -StandardUserPassword: standard user '$StandardUserName' not created or updated (non-admin scenarios will skip)"
        return
    }
    $user = Get-LocalUser -Name $StandardUserName -ErrorAction SilentlyContinue
    if ($null -eq $user) {
        $user = New-LocalUser -Name $StandardUserName -Password $StandardUserPassword -PasswordNeverExpires `
            -AccountNeverExpires -UserMayNotChangePassword -Description 'lkdh standard user for non-admin scenarios'
        Write-Step "created standard user $StandardUserName"
    } else {
        # Converge to the password given now, so the harness configuration and the VM agree.
        Set-LocalUser -Name $StandardUserName -Password $StandardUserPassword -PasswordNeverExpires $true
        Enable-LocalUser -Name $StandardUserName
    }
    $users = Get-LocalGroup -SID $UsersSid
    if (-not (Get-LocalGroupMember -Group $users | Where-Object { $_.SID -eq $user.SID })) {
        Add-LocalGroupMember -Group $users -Member $user
    }
    $administrators = Get-LocalGroup -SID $AdministratorsSid
    if (Get-LocalGroupMember -Group $administrators | Where-Object { $_.SID -eq $user.SID }) {
        Remove-LocalGroupMember -Group $administrators -Member $user
        Write-Step "removed $StandardUserName from Administrators: it must stay a standard user"
    }
    Grant-BatchLogonRight -Sid $user.SID
}

Assert-Administrator
Enable-WinRmHttps
if ($SkipOpenSsh) {
    Write-Step 'OpenSSH skipped (-SkipOpenSsh)'
} else {
    Enable-OpenSshServer
}
Set-DumpConfiguration
Disable-Sleep
Set-StandardUser
# Last: with Secure Boot on it fails, and everything else should be in place by then.
Enable-TestSigning
Write-Step 'done; reboot once so test signing and the dump settings take effect'
