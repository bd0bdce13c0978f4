param($P)
# lkdh-params: path! offset! length!
# One piece of a remote file as base64: the WinRM fallback for copying dumps where no SFTP exists.
# Opened with FileShare.ReadWrite|Delete so a file the OS still holds open can be read anyway; the
# file-hash check afterwards tells whether what was read is what ended up on disk.
$path = [string]$P.path
$offset = [int64]$P.offset
$length = [int]$P.length
$maximumLength = 16777216
if (-not [IO.Path]::IsPathRooted($path)) {
    throw "read-chunk: '$path' is not an absolute path"
}
if ($offset -lt 0 -or $length -lt 0 -or $length -gt $maximumLength) {
    throw "read-chunk: offset $offset / length $length out of range (length at most $maximumLength)"
}
$share = [IO.FileShare]::ReadWrite -bor [IO.FileShare]::Delete
$stream = New-Object IO.FileStream($path, [IO.FileMode]::Open, [IO.FileAccess]::Read, $share)
try {
    $fileSize = $stream.Length
    $buffer = New-Object byte[] $length
    $total = 0
    if ($offset -lt $fileSize) {
        [void]$stream.Seek($offset, [IO.SeekOrigin]::Begin)
        while ($total -lt $length) {
            $count = $stream.Read($buffer, $total, $length - $total)
            if ($count -eq 0) {
                break
            }
            $total += $count
        }
    }
} finally {
    $stream.Dispose()
}
[ordered]@{
    path = $path
    offset = $offset
    length = $total
    file_size = [int64]$fileSize
    eof = (($offset + $total) -ge $fileSize)
    data = [Convert]::ToBase64String($buffer, 0, $total)
}
