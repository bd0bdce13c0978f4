# Fragment: the present device with a given hardware id, and what Device Manager would say about it.
# ConfigManagerErrorCode is the CM_PROB_* problem code (0 = started); the names below are the codes
# a test driver meets most often (Device Manager error codes reference).
$LkdhProblemNames = @{
    1 = 'CM_PROB_NOT_CONFIGURED'
    10 = 'CM_PROB_FAILED_START'
    18 = 'CM_PROB_REINSTALL'
    22 = 'CM_PROB_DISABLED'
    28 = 'CM_PROB_FAILED_INSTALL'
    31 = 'CM_PROB_FAILED_ADD'
    37 = 'CM_PROB_FAILED_DRIVER_ENTRY'
    39 = 'CM_PROB_DRIVER_FAILED_LOAD'
    43 = 'CM_PROB_FAILED_POST_START'
    52 = 'CM_PROB_UNSIGNED_DRIVER'
}

function Get-LkdhDevice {
    param([string]$HardwareId)
    $matching = @(Get-CimInstance -ClassName Win32_PnPEntity | Where-Object { @($_.HardwareID) -contains $HardwareId })
    if ($matching.Count -eq 0) {
        return [ordered]@{ present = $false; instance_id = ''; status = ''; problem_code = -1; problem = 'not present' }
    }
    $device = $matching[0]
    $code = [int]$device.ConfigManagerErrorCode
    $problem = ''
    if ($code -ne 0) {
        $problem = 'CM_PROB ' + $code
        if ($LkdhProblemNames.ContainsKey($code)) {
            $problem = $LkdhProblemNames[$code]
        }
    }
    [ordered]@{
        present = $true
        instance_id = [string]$device.PNPDeviceID
        status = [string]$device.Status
        problem_code = $code
        problem = $problem
        count = $matching.Count
    }
}
