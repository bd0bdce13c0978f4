# The fixed command every script invocation runs (powershell.py sends it as -EncodedCommand).
# stdin: line 1 = base64(UTF-8 JSON of the parameters), the rest = the script text, whose first
# statement is param($P). Values therefore never enter a command line or any script text.
# stdout ends with one line LKDH-RESULT:<base64 UTF-8 JSON>; a terminating error becomes one line
# LKDH-ERROR:<base64 UTF-8 JSON {message, category, script_line}> and exit code 1.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
function Write-LkdhMarker {
    param([string]$Marker, $Value)
    $json = ConvertTo-Json -InputObject $Value -Depth 16 -Compress
    $encoded = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json))
    [Console]::Out.WriteLine($Marker + $encoded)
    [Console]::Out.Flush()
}
try {
    $payload = @($input) -join "`n"
    $split = $payload.IndexOf("`n")
    if ($split -lt 0) { throw 'lkdh bootstrap: stdin holds no script after the parameter line' }
    $json = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($payload.Substring(0, $split).Trim()))
    $params = ConvertFrom-Json -InputObject $json
    $script = [ScriptBlock]::Create($payload.Substring($split + 1))
    $output = @(& $script $params)
    $result = $null
    if ($output.Count -gt 0) {
        $result = $output[$output.Count - 1]
        for ($i = 0; $i -lt $output.Count - 1; $i++) {
            [Console]::Out.WriteLine(($output[$i] | Out-String).TrimEnd())
        }
    }
    Write-LkdhMarker 'LKDH-RESULT:' $result
    exit 0
} catch {
    $failure = [ordered]@{
        message = $_.Exception.Message
        category = [string]$_.CategoryInfo.Category
        script_line = $_.InvocationInfo.ScriptLineNumber
    }
    Write-LkdhMarker 'LKDH-ERROR:' $failure
    exit 1
}
