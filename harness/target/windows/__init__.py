"""The real Windows machine (DESIGN.md, target/windows): sessions, transfers, PowerShell, hypervisor."""
