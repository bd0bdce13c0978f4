param($P)
# lkdh-params:
# Turns test signing on so a test-signed driver loads. SystemStartOptions holds the options the
# running kernel booted with, so it tells whether test signing is already in force or needs a reboot.
# Secure Boot forbids test signing: bcdedit then fails ("protected by Secure Boot policy"), and the
# error says to turn Secure Boot off in the VM's firmware settings.
$startOptions = [string](Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control').SystemStartOptions
$activeNow = $startOptions -match '\bTESTSIGNING\b'
$secureBoot = $false
try {
    $secureBoot = [bool](Confirm-SecureBootUEFI)
} catch {
    $secureBoot = $false
}
$bcdedit = Join-Path $env:SystemRoot 'System32\bcdedit.exe'
$output = @(& $bcdedit /set '{current}' testsigning on)
$exitCode = $LASTEXITCODE
if ($exitCode -ne 0) {
    throw ("bcdedit /set testsigning on failed with exit code {0} (Secure Boot on: {1}): {2}" -f $exitCode, $secureBoot, ($output -join ' '))
}
[ordered]@{
    active_now = [bool]$activeNow
    configured = $true
    reboot_required = -not $activeNow
    secure_boot = $secureBoot
    boot_options = $startOptions.Trim()
}
