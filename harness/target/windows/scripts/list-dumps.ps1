param($P)
# lkdh-params:
# Every kernel dump on the machine: live dumps (LiveKernelReports\<ReportType>\*.dmp, F09), crash
# minidumps and MEMORY.DMP. The harness diffs two listings to find the dumps a step produced.
# A folder that cannot be read is reported in `warnings`, not fatal: the others still count.
# lkdh-include: _dump-folders.ps1
$folders = Get-LkdhDumpFolders
$dumps = New-Object System.Collections.Generic.List[object]
$warnings = New-Object System.Collections.Generic.List[string]

function Add-LkdhDump {
    param($File, [string]$Kind, [string]$Root, [string]$Prefix)
    $relative = $File.FullName.Substring($Root.TrimEnd('\').Length).TrimStart('\')
    $reportType = ''
    if ($Kind -eq 'live' -and $relative.Contains('\')) {
        $reportType = $relative.Substring(0, $relative.IndexOf('\'))
    }
    $written = $File.LastWriteTimeUtc
    $dumps.Add([ordered]@{
        kind = $Kind
        relative_name = $(if ($Prefix) { Join-Path $Prefix $relative } else { $relative })
        path = $File.FullName
        report_type = $reportType
        size = [int64]$File.Length
        last_write_utc = $written.ToString('o')
        last_write_unix = ([DateTimeOffset]$written).ToUnixTimeSeconds()
    })
}

$searches = @(
    @{ kind = 'live'; root = $folders.live; recurse = $true },
    @{ kind = 'crash'; root = $folders.minidump; recurse = $false }
)
foreach ($search in $searches) {
    if (-not (Test-Path -LiteralPath $search.root -PathType Container)) {
        continue
    }
    $listErrors = $null
    $recurse = [bool]$search.recurse
    $files = Get-ChildItem -LiteralPath $search.root -Filter '*.dmp' -File -Force -Recurse:$recurse `
        -ErrorAction SilentlyContinue -ErrorVariable listErrors
    foreach ($listError in @($listErrors)) {
        $warnings.Add([string]$listError.Exception.Message)
    }
    foreach ($file in @($files)) {
        Add-LkdhDump -File $file -Kind $search.kind -Root $search.root -Prefix (Split-Path -Leaf $search.root)
    }
}
if (Test-Path -LiteralPath $folders.memory_dump -PathType Leaf) {
    $memory = Get-Item -LiteralPath $folders.memory_dump -Force
    Add-LkdhDump -File $memory -Kind 'crash' -Root (Split-Path -Parent $folders.memory_dump) -Prefix ''
}
[ordered]@{
    folders = $folders
    dumps = @($dumps.ToArray())
    warnings = @($warnings.ToArray())
}
