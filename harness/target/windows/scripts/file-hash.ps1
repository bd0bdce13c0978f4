param($P)
# lkdh-params: paths!
# SHA-256 of each file, so every copied dump is verified against the machine's own hash. Get-FileHash
# opens with FileShare.Read: a file still being written fails here, which is the point (hash later).
$files = foreach ($path in @($P.paths)) {
    $path = [string]$path
    if (-not [IO.Path]::IsPathRooted($path)) {
        throw "file-hash: '$path' is not an absolute path"
    }
    if (Test-Path -LiteralPath $path -PathType Leaf) {
        $hash = Get-FileHash -LiteralPath $path -Algorithm SHA256
        [ordered]@{
            path = $path
            exists = $true
            sha256 = $hash.Hash.ToLowerInvariant()
            size = [int64](Get-Item -LiteralPath $path -Force).Length
        }
    } else {
        [ordered]@{ path = $path; exists = $false; sha256 = ''; size = [int64]0 }
    }
}
[ordered]@{ files = @($files) }
