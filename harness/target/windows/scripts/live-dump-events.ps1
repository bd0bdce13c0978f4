param($P)
# lkdh-params: since_unix max_events
# The Microsoft-Windows-Kernel-LiveDump/Operational events since a moment: why the kernel refused or
# abandoned a live dump (throttling, disk space, a disabled feature) when Create returned an error.
# The log is read, never cleared. A machine without that log answers with an empty list and a note.
$logName = 'Microsoft-Windows-Kernel-LiveDump/Operational'
$since = [DateTimeOffset]::FromUnixTimeSeconds([int64]$P.since_unix).UtcDateTime
$max = 50
if ($null -ne $P.max_events) {
    $max = [int]$P.max_events
}
$events = @()
$note = ''
try {
    $events = @(Get-WinEvent -FilterHashtable @{ LogName = $logName; StartTime = $since } -MaxEvents $max -ErrorAction Stop |
        ForEach-Object {
            [ordered]@{
                time_utc = $_.TimeCreated.ToUniversalTime().ToString('o')
                id = $_.Id
                level = [string]$_.LevelDisplayName
                message = [string]$_.Message
            }
        })
} catch [Exception] {
    if ($_.FullyQualifiedErrorId -like 'NoMatchingEventsFound*') {
        $note = 'no events since then'
    } else {
        $note = $_.Exception.Message
    }
}
[ordered]@{ log = $logName; events = @($events); note = $note }
