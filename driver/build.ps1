<#
.SYNOPSIS
Builds the signed LkdhTestDriver package: DMF at the pinned commit, MSBuild + WDK, stampinf, InfVerif,
Inf2Cat, a test certificate, SignTool for the .sys and the .cat, and lkdh-package.json.

.DESCRIPTION
Run on Windows with Visual Studio 2022 and the matching WDK (a GitHub-hosted windows-2022 runner has
both). Output: driver\build\LkdhTestDriver\{LkdhTestDriver.sys,.inf,.cat,lkdh-package.json},
driver\build\LkdhTest.cer and driver\build\lkdctl.exe: exactly what a target config's `driver`
section names. The version stamp format is described in driver\README.md ("Version stamp").
#>
param(
    [string]$Version = '1.0.0.0',
    [string]$DmfCommit = 'bfac434fd3497259095a1f8d70ed734493228091',
    [ValidateSet('x64', 'ARM64')][string]$Platform = 'x64',
    [string]$Configuration = 'Release',
    [string]$OutDir = (Join-Path $PSScriptRoot 'build')
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

if ($Version -notmatch '^\d{1,5}\.\d{1,5}\.\d{1,5}\.\d{1,5}$') { throw "Version must be a.b.c.d, not '$Version'" }
if ($DmfCommit -notmatch '^[0-9a-f]{40}$') { throw "DmfCommit must be a 40-digit commit hash" }

function Invoke-Tool {
    param([string]$Path, [string[]]$Arguments)
    & $Path @Arguments
    if ($LASTEXITCODE -ne 0) { throw ("{0} {1} failed with exit code {2}" -f $Path, ($Arguments -join ' '), $LASTEXITCODE) }
}

function Find-WdkTool {
    param([string]$Name)
    $kits = Join-Path ${env:ProgramFiles(x86)} 'Windows Kits\10\bin'
    $found = Get-ChildItem -LiteralPath $kits -Recurse -Filter $Name -ErrorAction SilentlyContinue |
        Where-Object { $_.FullName -match '\\x64\\' } | Sort-Object FullName -Descending | Select-Object -First 1
    if ($null -eq $found) { throw "$Name not found under $kits: install the WDK" }
    return $found.FullName
}

$vswhere = Join-Path ${env:ProgramFiles(x86)} 'Microsoft Visual Studio\Installer\vswhere.exe'
$msbuild = & $vswhere -latest -requires Microsoft.Component.MSBuild -find 'MSBuild\**\Bin\MSBuild.exe' | Select-Object -First 1
if (-not $msbuild) { throw 'MSBuild not found (Visual Studio 2022 with the C++ workload)' }
$arch = @{ x64 = 'amd64'; ARM64 = 'arm64' }[$Platform]
# cl.exe (lkdctl) needs the developer environment: enter it the documented way (Visual Studio's
# DevShell module), so the script needs no "Developer PowerShell" and CI no third-party action.
$vsPath = & $vswhere -latest -requires Microsoft.VisualStudio.Component.VC.Tools.x86.x64 -property installationPath
if (-not $vsPath) { throw 'Visual Studio C++ tools not found (Microsoft.VisualStudio.Component.VC.Tools.x86.x64)' }
Import-Module (Join-Path $vsPath 'Common7\Tools\Microsoft.VisualStudio.DevShell.dll')
Enter-VsDevShell -VsInstallPath $vsPath -SkipAutomaticLocation -DevCmdArguments "-arch=$arch -host_arch=amd64" | Out-Null
$work = Join-Path $OutDir 'work'
$package = Join-Path $OutDir 'LkdhTestDriver'
New-Item -ItemType Directory -Force -Path $work, $package | Out-Null

# 1. DMF at the pinned commit, built for the same configuration (DmfK.lib).
$dmf = Join-Path $work 'DMF'
if (-not (Test-Path -LiteralPath $dmf)) {
    Invoke-Tool 'git' @('clone', '--quiet', 'https://github.com/microsoft/DMF.git', $dmf)
}
Invoke-Tool 'git' @('-C', $dmf, 'checkout', '--quiet', $DmfCommit)
Invoke-Tool $msbuild @((Join-Path $dmf 'Dmf\Solution\DmfK\DmfK.vcxproj'), "/p:Configuration=$Configuration",
    "/p:Platform=$Platform", '/m', '/nologo', '/v:minimal')

# 2. The stamp header both the C files and the .rc include (driver\LkdhTestDriver\LkdhVersion.h).
$parts = $Version.Split('.')
$stamp = @(
    "#define LKDH_DRIVER_VERSION_MAJOR $($parts[0])",
    "#define LKDH_DRIVER_VERSION_MINOR $($parts[1])",
    "#define LKDH_DRIVER_VERSION_BUILD $($parts[2])",
    "#define LKDH_DRIVER_VERSION_REVISION $($parts[3])",
    "#define LKDH_DRIVER_VERSION_STRING `"$Version`"",
    "#define LKDH_DMF_COMMIT `"$DmfCommit`""
)
Set-Content -LiteralPath (Join-Path $work 'LkdhStamp.h') -Value $stamp -Encoding Ascii

# 3. The driver: LkdhTestDriver.vcxproj (WPP Recorder on, stampinf with the same version).
$project = Join-Path $PSScriptRoot 'LkdhTestDriver\LkdhTestDriver.vcxproj'
Invoke-Tool $msbuild @($project, "/p:Configuration=$Configuration", "/p:Platform=$Platform", "/p:DmfRoot=$dmf\",
    "/p:LkdhStampDir=$work\", "/p:LkdhDriverVersion=$Version", "/p:OutDir=$work\bin\", '/m', '/nologo', '/v:minimal')
Copy-Item -LiteralPath (Join-Path $work 'bin\LkdhTestDriver.sys'), (Join-Path $work 'bin\LkdhTestDriver.inf') -Destination $package -Force

# 4. InfVerif (/w: the Windows driver rules), then the catalog for this architecture and OS floor.
Invoke-Tool (Find-WdkTool 'infverif.exe') @('/w', (Join-Path $package 'LkdhTestDriver.inf'))
Invoke-Tool (Find-WdkTool 'Inf2Cat.exe') @("/driver:$package", "/os:10_VB_$($Platform.ToUpperInvariant())", '/uselocaltime')

# 5. A test certificate (a fresh one per build unless LKDH_SIGNING_PFX names one), trusted by the VM
#    through import-certificate.ps1; SignTool signs the .sys and the .cat with SHA-256.
$cer = Join-Path $OutDir 'LkdhTest.cer'
$pfx = $env:LKDH_SIGNING_PFX
if (-not $pfx) {
    $certificate = New-SelfSignedCertificate -Type CodeSigningCert -Subject 'CN=lkdh test signing' `
        -CertStoreLocation Cert:\CurrentUser\My -NotAfter (Get-Date).AddYears(1)
    Export-Certificate -Cert $certificate -FilePath $cer | Out-Null
    $signArguments = @('/sha1', $certificate.Thumbprint, '/s', 'My')
} else {
    $signArguments = @('/f', $pfx)
}
$signtool = Find-WdkTool 'signtool.exe'
foreach ($file in @('LkdhTestDriver.sys', 'LkdhTestDriver.cat')) {
    Invoke-Tool $signtool (@('sign', '/fd', 'sha256') + $signArguments + @((Join-Path $package $file)))
}

# 6. The version stamp the harness reads (driver\README.md, "Version stamp").
$sysHash = (Get-FileHash -LiteralPath (Join-Path $package 'LkdhTestDriver.sys') -Algorithm SHA256).Hash.ToLowerInvariant()
$document = [ordered]@{ format = 1; driver_version = $Version; dmf_commit = $DmfCommit; sys_sha256 = $sysHash }
Set-Content -LiteralPath (Join-Path $package 'lkdh-package.json') -Value (ConvertTo-Json $document) -Encoding Ascii

# 7. lkdctl.exe with MSVC, beside the package.
$cl = Join-Path $PSScriptRoot 'lkdctl'
Push-Location $cl
try {
    Invoke-Tool 'cl.exe' @('/nologo', '/W4', '/WX', '/std:c11', '/I', '..\include', 'lkdctl.c', 'devnode.c',
        'setupapi.lib', 'newdev.lib', "/Fe:$(Join-Path $OutDir 'lkdctl.exe')", "/Fo:$work\")
} finally {
    Pop-Location
}
Write-Output "package: $package (driver $Version, DMF $DmfCommit, $arch)"
