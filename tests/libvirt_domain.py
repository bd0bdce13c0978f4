"""A libvirt domain for the cached KVM guest: the same machine tests/kvm_guest.py boots with QemuVm.

`KvmGuest` gives the overlay disk, the loopback port, the pinned known_hosts and the SSH session;
this module describes that guest to libvirt (https://libvirt.org/formatdomain.html):
- `type='kvm'` where kvm_guest.accelerator() says kvm, `type='qemu'` (TCG) where it says tcg; the
  CPU is the host's (without IA32_ARCH_CAPABILITIES, see QemuVmSpec.cpu) or, under TCG, `maximum`;
- kernel and initrd booted directly, the qcow2 overlay as virtio disk (internal snapshots with
  memory need qcow2);
- `<panic model='isa'>` (pvpanic, ACPI id QEMU0001, so `<acpi/>` is on: without it libvirt passes
  -no-acpi and the guest's pvpanic driver never binds) with `<on_crash>restart</on_crash>`: libvirt
  emits VIR_DOMAIN_EVENT_CRASHED / PANICKED, then resets the guest itself ("restart", run here as
  libvirt's fake reboot in the same QEMU process);
- the serial console to a file libvirt opens with append on: the console history across reverts
  and cycles, at the path KvmGuest's console_tail() reads;
- the network: libvirt 9.0's `<interface type='user'>` (slirp) has neither `restrict` nor host
  forwards (`<portForward>` is for the passt backend only), so the NIC is QEMU's own
  `-netdev user,restrict=on,hostfwd=tcp:127.0.0.1:PORT-:22` through `<qemu:commandline>`
  (https://libvirt.org/drvqemu.html#pass-through-of-arbitrary-qemu-commands): the guest reaches
  nothing, not even the host, and only 127.0.0.1 reaches its sshd. Its PCI slot is fixed (0x10)
  because QEMU would otherwise give it slot 1, which libvirt assigns to its first root port;
- `<seclabel type='static' model='dac' relabel='no'>` with `+0:+0`: QEMU runs as root for this
  domain and libvirt chowns nothing, so the files under pytest's tmp folder and ~/.cache (both
  0700 root) are readable without changing qemu.conf (Debian's default runs QEMU as libvirt-qemu).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any

import kvm_image
from kvm_guest import KvmGuest

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
NIC_SLOT = "0x10"


def _sub(parent: ElementTree.Element, tag: str, text: str | None = None, **attrs: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag, attrs)
    element.text = text
    return element


def domain_xml(guest: KvmGuest) -> str:
    """The domain for `guest`: its disk, console, SSH forward and accelerator (module docstring)."""
    spec = guest.vm.spec
    ElementTree.register_namespace("qemu", QEMU_NS)
    root = ElementTree.Element("domain", type="kvm" if guest.accel == "kvm" else "qemu")
    _sub(root, "name", guest.name)
    _sub(root, "memory", str(spec.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(spec.cpus))
    os_ = _sub(root, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine="q35")
    _sub(os_, "kernel", str(guest.image.kernel))
    _sub(os_, "initrd", str(guest.image.initrd))
    _sub(os_, "cmdline", kvm_image.KERNEL_ARGS)
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if guest.accel == "kvm":
        cpu = _sub(root, "cpu", mode="host-passthrough", check="none")
        _sub(cpu, "feature", policy="disable", name="arch-capabilities")
    else:
        _sub(root, "cpu", mode="maximum", check="none")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "restart")
    devices = _sub(root, "devices")
    _sub(devices, "emulator", spec.qemu if spec.qemu.startswith("/") else f"/usr/bin/{spec.qemu}")
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="qcow2")
    _sub(disk, "source", file=str(spec.disk))
    _sub(disk, "target", dev="vda", bus="virtio")
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=str(spec.console_log), append="on")
    _sub(serial, "target", port="0")
    panic = _sub(devices, "panic", model="isa")
    _sub(panic, "address", type="isa", iobase="0x505")
    _sub(devices, "controller", type="usb", model="none")
    _sub(devices, "memballoon", model="none")
    seclabel = _sub(root, "seclabel", type="static", model="dac", relabel="no")
    _sub(seclabel, "label", "+0:+0")
    forwards = [forward.option() for forward in spec.forwards]
    netdev = ",".join(["user", "id=lkdhnet", "restrict=on", *forwards])
    commandline = _sub(root, f"{{{QEMU_NS}}}commandline")
    for value in ("-netdev", netdev, "-device", f"virtio-net-pci,netdev=lkdhnet,bus=pcie.0,addr={NIC_SLOT}"):
        _sub(commandline, f"{{{QEMU_NS}}}arg", value=value)
    return ElementTree.tostring(root, encoding="unicode")


def define_and_start(connection: Any, guest: KvmGuest) -> Any:
    """Define the domain (persistent: snapshots need it) and start it; the domain object."""
    domain = connection.defineXML(domain_xml(guest))
    domain.create()
    return domain


def remove(connection: Any, name: str) -> None:
    """Stop and undefine `name` with its snapshots' metadata (their data is in the tmp overlay)."""
    import libvirt

    try:
        domain = connection.lookupByName(name)
    except libvirt.libvirtError:
        return
    if domain.isActive():
        domain.destroy()
    domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
