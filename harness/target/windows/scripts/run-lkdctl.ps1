param($P)
# lkdh-params: exe_path! arguments input_base64 run_as_user password timeout_seconds
# Runs lkdctl.exe (one IOCTL per call, driver/) and returns its exit code, stdout (JSON by lkdctl's
# contract; the harness parses it) and stderr. The arguments arrive as a JSON array and go to the
# program as an array (& $exe @arguments): no command line is ever built from them. Windows
# PowerShell 5.1 does not escape embedded double quotes when it passes arguments to a program, and
# drops empty ones, so both are refused here rather than silently changed.
# With run_as_user, lkdctl runs as that standard user (scenarios that need a non-admin caller, F26):
# through a one-off scheduled task registered with `password`, which is passed to
# Register-ScheduledTask only and never written, logged or returned. The task runs a fixed runner
# script that reads the program and arguments from a JSON file in a private job folder; the account
# needs "Log on as a batch job" (vm/bootstrap.ps1 grants it).
$exePath = [string]$P.exe_path
$arguments = @()
foreach ($argument in @($P.arguments)) {
    if ($null -eq $argument) {
        continue
    }
    $text = [string]$argument
    if ($text.Length -eq 0 -or $text.Contains('"')) {
        throw "run-lkdctl: arguments must be non-empty and contain no double quote"
    }
    $arguments += $text
}
if (-not [IO.Path]::IsPathRooted($exePath) -or -not (Test-Path -LiteralPath $exePath -PathType Leaf)) {
    throw "run-lkdctl: no program at '$exePath' (an absolute path is required)"
}
# The IOCTL input (and the user data lkdctl places in its memory) arrives as data: it is written to
# a file only this run reads and passed as `--in-file <path>`, never on a command line.
$inputBytes = $null
if ($null -ne $P.input_base64) {
    $inputBytes = [Convert]::FromBase64String([string]$P.input_base64)
}
$timeout = 120
if ($null -ne $P.timeout_seconds) {
    $timeout = [int]$P.timeout_seconds
}

function Split-LkdhOutput {
    param($Merged)
    $stdout = @($Merged | Where-Object { $_ -isnot [Management.Automation.ErrorRecord] } | ForEach-Object { [string]$_ })
    $stderr = @($Merged | Where-Object { $_ -is [Management.Automation.ErrorRecord] } | ForEach-Object { $_.Exception.Message })
    return , @(($stdout -join "`n"), ($stderr -join "`n"))
}

if (-not $P.run_as_user) {
    $inputFile = $null
    try {
        if ($null -ne $inputBytes) {
            $inputFile = [IO.Path]::GetTempFileName()
            [IO.File]::WriteAllBytes($inputFile, $inputBytes)
            $arguments += @('--in-file', $inputFile)
        }
        $ErrorActionPreference = 'Continue'
        $merged = @(& $exePath @arguments 2>&1)
        $exitCode = $LASTEXITCODE
        $ErrorActionPreference = 'Stop'
    } finally {
        if ($inputFile) {
            Remove-Item -LiteralPath $inputFile -Force -ErrorAction SilentlyContinue
        }
    }
    $streams = Split-LkdhOutput $merged
    return [ordered]@{ exit_code = $exitCode; stdout = $streams[0]; stderr = $streams[1]; user = [Environment]::UserName }
}

$runner = @'
$utf8 = New-Object Text.UTF8Encoding $false
function Write-JobFile([string]$Name, [string]$Text) {
    [IO.File]::WriteAllText((Join-Path $PSScriptRoot $Name), $Text, $utf8)
}
try {
    $ErrorActionPreference = 'Stop'
    $job = Get-Content -LiteralPath (Join-Path $PSScriptRoot 'job.json') -Raw | ConvertFrom-Json
    $ErrorActionPreference = 'Continue'
    $jobArguments = @($job.arguments)
    $merged = @(& $job.exe_path @jobArguments 2>&1)
    $exitCode = $LASTEXITCODE
    $ErrorActionPreference = 'Stop'
    $stdout = @($merged | Where-Object { $_ -isnot [Management.Automation.ErrorRecord] } | ForEach-Object { [string]$_ })
    $stderr = @($merged | Where-Object { $_ -is [Management.Automation.ErrorRecord] } | ForEach-Object { $_.Exception.Message })
    Write-JobFile 'stdout.txt' ($stdout -join "`n")
    Write-JobFile 'stderr.txt' ($stderr -join "`n")
    Write-JobFile 'exit.tmp' ([string]$exitCode)
} catch {
    Write-JobFile 'error.txt' $_.Exception.Message
    Write-JobFile 'exit.tmp' ''
}
Write-JobFile 'whoami.txt' ([Environment]::UserName)
[IO.File]::Move((Join-Path $PSScriptRoot 'exit.tmp'), (Join-Path $PSScriptRoot 'exit.txt'))
'@

$userName = [string]$P.run_as_user
if (-not $P.password) {
    throw "run-lkdctl: run_as_user needs the account's password parameter"
}
$jobId = [guid]::NewGuid().ToString('N')
$jobFolder = Join-Path $env:ProgramData ('lkdh\jobs\' + $jobId)
$taskName = 'lkdh-run-' + $jobId
$utf8 = New-Object Text.UTF8Encoding $false
[void][IO.Directory]::CreateDirectory($jobFolder)
try {
    $acl = Get-Acl -LiteralPath $jobFolder
    $rule = New-Object Security.AccessControl.FileSystemAccessRule -ArgumentList $userName, 'Modify', 'ContainerInherit, ObjectInherit', 'None', 'Allow'
    $acl.AddAccessRule($rule)
    Set-Acl -LiteralPath $jobFolder -AclObject $acl
    $runnerPath = Join-Path $jobFolder 'runner.ps1'
    [IO.File]::WriteAllText($runnerPath, $runner, $utf8)
    if ($null -ne $inputBytes) {
        $jobInput = Join-Path $jobFolder 'input.bin'
        [IO.File]::WriteAllBytes($jobInput, $inputBytes)
        $arguments += @('--in-file', $jobInput)
    }
    $jobJson = ConvertTo-Json -InputObject ([ordered]@{ exe_path = $exePath; arguments = @($arguments) }) -Compress
    [IO.File]::WriteAllText((Join-Path $jobFolder 'job.json'), $jobJson, $utf8)

    # The task's command line holds only constants and the job folder (ProgramData + a new GUID).
    $powershell = Join-Path $env:SystemRoot 'System32\WindowsPowerShell\v1.0\powershell.exe'
    $taskArguments = '-NoProfile -NonInteractive -ExecutionPolicy Bypass -File "' + $runnerPath + '"'
    $taskAction = New-ScheduledTaskAction -Execute $powershell -Argument $taskArguments -WorkingDirectory $jobFolder
    $taskSettings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -ExecutionTimeLimit (New-TimeSpan -Seconds ($timeout + 30))
    Register-ScheduledTask -TaskName $taskName -Action $taskAction -Settings $taskSettings -User $userName -Password ([string]$P.password) -RunLevel Limited | Out-Null
    Start-ScheduledTask -TaskName $taskName
    $exitFile = Join-Path $jobFolder 'exit.txt'
    $deadline = (Get-Date).AddSeconds($timeout)
    while (-not (Test-Path -LiteralPath $exitFile)) {
        if ((Get-Date) -gt $deadline) {
            $lastResult = (Get-ScheduledTaskInfo -TaskName $taskName).LastTaskResult
            throw "run-lkdctl: no result from the task running as '$userName' after $timeout s (task result $lastResult)"
        }
        Start-Sleep -Milliseconds 250
    }
    $errorFile = Join-Path $jobFolder 'error.txt'
    if (Test-Path -LiteralPath $errorFile) {
        throw ("run-lkdctl: the runner failed as '$userName': " + [IO.File]::ReadAllText($errorFile))
    }
    [ordered]@{
        exit_code = [int]([IO.File]::ReadAllText($exitFile))
        stdout = [IO.File]::ReadAllText((Join-Path $jobFolder 'stdout.txt'))
        stderr = [IO.File]::ReadAllText((Join-Path $jobFolder 'stderr.txt'))
        user = [IO.File]::ReadAllText((Join-Path $jobFolder 'whoami.txt'))
    }
} finally {
    if (Get-ScheduledTask -TaskName $taskName -ErrorAction SilentlyContinue) {
        Stop-ScheduledTask -TaskName $taskName -ErrorAction SilentlyContinue
        Unregister-ScheduledTask -TaskName $taskName -Confirm:$false
    }
    Remove-Item -LiteralPath $jobFolder -Recurse -Force -ErrorAction SilentlyContinue
}
