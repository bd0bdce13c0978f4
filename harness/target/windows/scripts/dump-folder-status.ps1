param($P)
# lkdh-params: create_missing
# Can the machine write dumps where the harness will look? For each dump folder: does it exist, can
# a file be created in it (probed with a file deleted on close, as this account), and how much room
# is left on its volume: a full disk is a silent reason for a missing dump.
# lkdh-include: _dump-folders.ps1
$folders = Get-LkdhDumpFolders

function Get-LkdhFolderStatus {
    param([string]$Folder, [bool]$CreateMissing)
    $created = $false
    if ($CreateMissing -and -not (Test-Path -LiteralPath $Folder -PathType Container)) {
        [void][IO.Directory]::CreateDirectory($Folder)
        $created = $true
    }
    $exists = Test-Path -LiteralPath $Folder -PathType Container
    $writable = $false
    $writeError = ''
    if ($exists) {
        $probe = Join-Path $Folder ('.lkdh-probe-' + [guid]::NewGuid().ToString('N') + '.tmp')
        try {
            $stream = New-Object IO.FileStream($probe, [IO.FileMode]::CreateNew, [IO.FileAccess]::Write, [IO.FileShare]::None, 4096, [IO.FileOptions]::DeleteOnClose)
            $stream.Dispose()
            $writable = $true
        } catch {
            $writeError = $_.Exception.Message
        }
    }
    $drive = New-Object IO.DriveInfo -ArgumentList ([IO.Path]::GetPathRoot($Folder))
    [ordered]@{
        path = $Folder
        exists = $exists
        created = $created
        writable = $writable
        write_error = $writeError
        free_bytes = [int64]$drive.AvailableFreeSpace
        total_bytes = [int64]$drive.TotalSize
    }
}

$createMissing = ($P.create_missing -eq $true)
[ordered]@{
    live = Get-LkdhFolderStatus $folders.live $createMissing
    minidump = Get-LkdhFolderStatus $folders.minidump $createMissing
    memory_dump_path = $folders.memory_dump
}
