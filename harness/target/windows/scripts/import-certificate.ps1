param($P)
# lkdh-params: cer_path! stores
# Trusts the certificate that test-signed the driver: Root makes the chain valid, TrustedPublisher
# lets PnP install the package without a prompt. Uses the X509Store API, not Import-Certificate, so
# the path is never read as a wildcard pattern. Only these two LocalMachine stores are accepted.
$cerPath = [string]$P.cer_path
$stores = @('Root', 'TrustedPublisher')
if ($null -ne $P.stores) {
    $stores = @($P.stores | ForEach-Object { [string]$_ })
}
foreach ($storeName in $stores) {
    if ($storeName -notin @('Root', 'TrustedPublisher')) {
        throw "import-certificate: store '$storeName' is not Root or TrustedPublisher"
    }
}
if (-not (Test-Path -LiteralPath $cerPath -PathType Leaf)) {
    throw "import-certificate: no certificate at '$cerPath'"
}
$certificate = New-Object Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList $cerPath
foreach ($storeName in $stores) {
    $store = New-Object Security.Cryptography.X509Certificates.X509Store -ArgumentList $storeName, 'LocalMachine'
    $store.Open([Security.Cryptography.X509Certificates.OpenFlags]::ReadWrite)
    try {
        $store.Add($certificate)
    } finally {
        $store.Close()
    }
}
[ordered]@{
    thumbprint = $certificate.Thumbprint
    subject = $certificate.Subject
    not_after_utc = $certificate.NotAfter.ToUniversalTime().ToString('o')
    stores = @($stores)
}
