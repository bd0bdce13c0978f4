param($P)
# lkdh-params: paths!
# Deletes collected dumps so the next step's listing starts clean. It refuses, before deleting
# anything, every path that is not a .dmp file inside the dump folders (or the MEMORY.DMP file
# itself), and every path reached through a junction or symbolic link below a dump folder: a harness
# bug must not be able to delete anything else on the machine.
# lkdh-include: _dump-folders.ps1
$folders = Get-LkdhDumpFolders
$roots = @($folders.live, $folders.minidump) | ForEach-Object { $_.TrimEnd('\') + '\' }
$ignoreCase = [StringComparison]::OrdinalIgnoreCase

function Test-LkdhReparseBelow {
    param([string]$Path, [string]$Root)
    $current = $Path
    while ($current.Length -gt $Root.Length) {
        if (Test-Path -LiteralPath $current) {
            $attributes = (Get-Item -LiteralPath $current -Force).Attributes
            if ($attributes -band [IO.FileAttributes]::ReparsePoint) {
                return $true
            }
        }
        $current = Split-Path -Parent $current
    }
    return $false
}

$refused = New-Object System.Collections.Generic.List[string]
$accepted = New-Object System.Collections.Generic.List[string]
foreach ($path in @($P.paths)) {
    $path = [string]$path
    $full = $null
    $plain = $path.Length -ge 4 -and $path.IndexOf(':', 2) -lt 0 -and -not $path.StartsWith('\\')
    if ($plain -and [IO.Path]::IsPathRooted($path)) {
        $full = [IO.Path]::GetFullPath($path)
    }
    $allowed = $false
    if ($full -and $full.Equals($folders.memory_dump, $ignoreCase)) {
        $allowed = $true
    } elseif ($full -and $full.EndsWith('.dmp', $ignoreCase)) {
        foreach ($root in $roots) {
            if ($full.StartsWith($root, $ignoreCase) -and -not (Test-LkdhReparseBelow $full $root)) {
                $allowed = $true
            }
        }
    }
    if ($allowed) {
        $accepted.Add($full)
    } else {
        $refused.Add($path)
    }
}
if ($refused.Count -gt 0) {
    throw ("delete-files refuses paths outside the dump folders (nothing deleted): " + ($refused -join '; '))
}
$deleted = New-Object System.Collections.Generic.List[string]
$absent = New-Object System.Collections.Generic.List[string]
foreach ($full in $accepted) {
    if ([IO.File]::Exists($full)) {
        [IO.File]::Delete($full)
        $deleted.Add($full)
    } else {
        $absent.Add($full)
    }
}
[ordered]@{ deleted = @($deleted.ToArray()); absent = @($absent.ToArray()) }
