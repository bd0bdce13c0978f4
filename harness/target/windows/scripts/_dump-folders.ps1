# Fragment: where this machine writes its kernel dumps, read from the registry so that listing,
# hashing and deleting agree even when an administrator moved a folder.
# Live dumps: %SystemRoot%\LiveKernelReports unless CrashControl\LiveKernelReports\LiveKernelReportsPath
# (an NT path such as \??\C:\Dumps) redirects them (F09). Crash minidumps: CrashControl\MinidumpDir.
# The full crash dump: CrashControl\DumpFile (MEMORY.DMP).
function Get-LkdhDumpFolders {
    $crashControl = 'HKLM:\SYSTEM\CurrentControlSet\Control\CrashControl'
    $settings = Get-ItemProperty -LiteralPath $crashControl
    $live = Join-Path $env:SystemRoot 'LiveKernelReports'
    $liveKey = Join-Path $crashControl 'LiveKernelReports'
    if (Test-Path -LiteralPath $liveKey) {
        $redirect = (Get-ItemProperty -LiteralPath $liveKey).LiveKernelReportsPath
        if ($redirect) {
            $live = ([string]$redirect) -replace '^\\\?\?\\', ''
        }
    }
    $minidump = Join-Path $env:SystemRoot 'Minidump'
    if ($settings.MinidumpDir) {
        $minidump = [Environment]::ExpandEnvironmentVariables([string]$settings.MinidumpDir)
    }
    $memoryDump = Join-Path $env:SystemRoot 'MEMORY.DMP'
    if ($settings.DumpFile) {
        $memoryDump = [Environment]::ExpandEnvironmentVariables([string]$settings.DumpFile)
    }
    [ordered]@{
        live = [IO.Path]::GetFullPath($live)
        minidump = [IO.Path]::GetFullPath($minidump)
        memory_dump = [IO.Path]::GetFullPath($memoryDump)
    }
}
