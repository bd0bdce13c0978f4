# Builds the lkdh Windows test VM image with QEMU/KVM, for a libvirt host (vm/README.md).
#
#   export PKR_VAR_admin_password=...      # never written to a file
#   export PKR_VAR_standard_password=...
#   export PKR_VAR_ssh_public_key="$(cat ~/.ssh/id_ed25519.pub)"
#   packer init vm/packer && packer build -var iso_url=... -var iso_checksum=sha256:... vm/packer
#
# Why this shape:
# - BIOS firmware and an MBR disk: test signing needs Secure Boot off anyway, and libvirt can take
#   internal (qcow2) snapshots of a BIOS VM, running, memory included; with UEFI pflash it cannot.
#   Windows 11 checks for TPM/Secure Boot/UEFI; autounattend.xml sets the LabConfig bypass values.
# - SATA disk and an e1000 NIC: drivers in the box, so no virtio-win ISO is needed.
# - autounattend.xml is rendered by templatefile() into a CD (needs xorriso or mkisofs on the host),
#   so the administrator password lives only in the environment and the build VM.
# - WinRM over HTTPS (5986) with NTLM, as vm/bootstrap.ps1 leaves it. winrm_insecure is for this
#   build only: the certificate is generated inside the VM, and the harness pins its fingerprint
#   (C:\lkdh\winrm-https.json, downloaded into the output folder below).
# Hyper-V instead: the `hyperv-iso` builder takes the same cd_content/cd_files, communicator and
# provisioners; use generation = 2 with enable_secure_boot = false (test signing), and replace the
# BIOS/MBR partitioning in autounattend.xml with the EFI/MSR/Windows GPT layout.

packer {
  required_plugins {
    qemu = {
      source  = "github.com/hashicorp/qemu"
      version = ">= 1.1.0"
    }
  }
}

variable "iso_url" {
  type        = string
  description = "Windows 10/11 or Windows Server installation ISO (evaluation media works)."
}

variable "iso_checksum" {
  type        = string
  description = "Checksum of the ISO, as type:value (sha256:...)."
}

variable "image_name" {
  type        = string
  default     = "Windows 10 Pro"
  description = "The edition to install: its /IMAGE/NAME in install.wim (dism /Get-WimInfo lists them)."
}

variable "admin_user" {
  type    = string
  default = "lkdh-admin"
}

variable "admin_password" {
  type      = string
  sensitive = true
}

variable "standard_user" {
  type    = string
  default = "lkdh-user"
}

variable "standard_password" {
  type      = string
  sensitive = true
}

variable "ssh_public_key" {
  type        = string
  default     = ""
  description = "OpenSSH public key for administrators_authorized_keys (empty: SFTP by password only)."
}

variable "vm_name" {
  type    = string
  default = "lkdh-win"
}

variable "output_directory" {
  type    = string
  default = "output-lkdh-win"
}

source "qemu" "windows" {
  vm_name          = "${var.vm_name}.qcow2"
  iso_url          = var.iso_url
  iso_checksum     = var.iso_checksum
  output_directory = var.output_directory
  accelerator      = "kvm"
  machine_type     = "q35"
  cpus             = 2
  memory           = 4096
  disk_size        = "64G"
  format           = "qcow2"
  disk_interface   = "sata"
  net_device       = "e1000"
  headless         = true
  cd_label         = "LKDH"
  cd_files         = ["${path.root}/../bootstrap.ps1"]
  cd_content = {
    "autounattend.xml" = templatefile("${path.root}/autounattend.xml", {
      admin_user     = var.admin_user
      admin_password = var.admin_password
      image_name     = var.image_name
    })
  }
  boot_wait        = "2s"
  boot_command     = ["<enter><wait><enter><wait><enter>"]
  communicator     = "winrm"
  winrm_username   = var.admin_user
  winrm_password   = var.admin_password
  winrm_port       = 5986
  winrm_use_ssl    = true
  winrm_insecure   = true
  winrm_use_ntlm   = true
  winrm_timeout    = "2h"
  shutdown_command = "shutdown /s /t 10 /f /d p:4:1 /c \"packer shutdown\""
  shutdown_timeout = "15m"
}

build {
  sources = ["source.qemu.windows"]

  # Second run of bootstrap.ps1, now with the secrets first logon could not have: it converges the
  # rest and creates the standard user. The values travel as environment variables of this one
  # command (Packer redacts sensitive variables from its log).
  provisioner "powershell" {
    environment_vars = [
      "LKDH_STANDARD_USER=${var.standard_user}",
      "LKDH_STANDARD_PASSWORD=${var.standard_password}",
      "LKDH_SSH_PUBLIC_KEY=${var.ssh_public_key}",
    ]
    inline = [
      "$password = ConvertTo-SecureString -String $env:LKDH_STANDARD_PASSWORD -AsPlainText -Force",
      "$keys = @($env:LKDH_SSH_PUBLIC_KEY) | Where-Object { $_ }",
      "& C:\\lkdh\\bootstrap.ps1 -StandardUserName $env:LKDH_STANDARD_USER -StandardUserPassword $password -AdministratorsAuthorizedKeys $keys",
    ]
  }

  # Test signing and the dump settings take effect at boot.
  provisioner "windows-restart" {
    restart_timeout = "30m"
  }

  # The certificate the harness pins: fingerprint (JSON) and the DER file.
  provisioner "file" {
    direction   = "download"
    source      = "C:\\lkdh\\winrm-https.json"
    destination = "${var.output_directory}/winrm-https.json"
  }

  provisioner "file" {
    direction   = "download"
    source      = "C:\\lkdh\\winrm-https.cer"
    destination = "${var.output_directory}/winrm-https.cer"
  }
}
