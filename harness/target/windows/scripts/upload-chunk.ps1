param($P)
# lkdh-params: path! offset! data!
# Writes one base64 piece of a file at `offset`: the WinRM fallback for uploading the driver package
# and lkdctl.exe where no SFTP exists. Anything after `offset` is cut first, so resending a chunk
# after a lost answer is harmless; a gap (offset beyond the end) is refused. The chunk's SHA-256 comes
# back so the sender can check what arrived.
$path = [string]$P.path
$offset = [int64]$P.offset
if (-not [IO.Path]::IsPathRooted($path)) {
    throw "upload-chunk: '$path' is not an absolute path"
}
$bytes = [Convert]::FromBase64String([string]$P.data)
$folder = Split-Path -Parent $path
if (-not (Test-Path -LiteralPath $folder -PathType Container)) {
    [void][IO.Directory]::CreateDirectory($folder)
}
$stream = New-Object IO.FileStream($path, [IO.FileMode]::OpenOrCreate, [IO.FileAccess]::ReadWrite, [IO.FileShare]::Read)
try {
    if ($offset -lt 0 -or $offset -gt $stream.Length) {
        throw "upload-chunk: offset $offset is beyond the end of '$path' ($($stream.Length) bytes)"
    }
    $stream.SetLength($offset)
    [void]$stream.Seek($offset, [IO.SeekOrigin]::Begin)
    $stream.Write($bytes, 0, $bytes.Length)
    $stream.Flush()
    $newLength = $stream.Length
} finally {
    $stream.Dispose()
}
$sha256 = [Security.Cryptography.SHA256]::Create()
try {
    $chunkHash = ([BitConverter]::ToString($sha256.ComputeHash($bytes)) -replace '-', '').ToLowerInvariant()
} finally {
    $sha256.Dispose()
}
[ordered]@{ path = $path; offset = $offset; written = $bytes.Length; length = [int64]$newLength; chunk_sha256 = $chunkHash }
