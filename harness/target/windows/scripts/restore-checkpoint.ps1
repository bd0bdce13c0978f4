param($P)
# lkdh-params: vm_name! checkpoint_name! start wait_heartbeat_seconds
# Runs on the Hyper-V HOST (a session to the host, not to the test VM): puts the VM back to the clean
# checkpoint that `prepare()` starts from, then starts it. The VM and the checkpoint are looked up by
# exact name (the cmdlets' -Name parameters take wildcards). A running VM is turned off first: its
# state is being thrown away anyway. With wait_heartbeat_seconds, waits for the guest's heartbeat
# integration service to answer, which says the guest OS is up (WinRM may need a little longer).
$vmName = [string]$P.vm_name
$checkpointName = [string]$P.checkpoint_name
$machines = @(Get-VM | Where-Object { $_.Name -eq $vmName })
if ($machines.Count -ne 1) {
    throw "restore-checkpoint: expected one VM named '$vmName', found $($machines.Count)"
}
$vm = $machines[0]
$checkpoints = @(Get-VMCheckpoint -VM $vm | Where-Object { $_.Name -eq $checkpointName })
if ($checkpoints.Count -ne 1) {
    throw "restore-checkpoint: expected one checkpoint named '$checkpointName' on '$vmName', found $($checkpoints.Count)"
}
if ($vm.State -ne 'Off' -and $vm.State -ne 'Saved') {
    Stop-VM -VM $vm -TurnOff -Force -Confirm:$false
}
Restore-VMCheckpoint -VMSnapshot $checkpoints[0] -Confirm:$false
$started = $false
if ($P.start -ne $false) {
    $vm = Get-VM -Id $vm.Id
    if ($vm.State -ne 'Running') {
        Start-VM -VM $vm
        $started = $true
    }
}
$heartbeat = ''
if ($P.wait_heartbeat_seconds) {
    $deadline = (Get-Date).AddSeconds([int]$P.wait_heartbeat_seconds)
    do {
        $heartbeat = [string](Get-VM -Id $vm.Id).Heartbeat
        if ($heartbeat -like 'Ok*') {
            break
        }
        Start-Sleep -Seconds 2
    } while ((Get-Date) -lt $deadline)
}
$vm = Get-VM -Id $vm.Id
[ordered]@{
    vm_name = $vm.Name
    checkpoint = $checkpoints[0].Name
    checkpoint_created_utc = $checkpoints[0].CreationTime.ToUniversalTime().ToString('o')
    state = [string]$vm.State
    started = $started
    heartbeat = [string]$vm.Heartbeat
}
