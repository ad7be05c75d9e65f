"""A sysfs tree laid out like an 8x H200 + 8x ConnectX-7 (mlx5) node: two sockets, eight PCIe switches each
holding one GPU and one NIC (the HGX layout), the NIC's PCI function under the switch's downstream port,
/sys/class/infiniband entries linking to it, the full 255-entry GID table per port. Used by the rdma_facts
tests and placed inside the node-prep test hosts, which have no RDMA hardware."""
import os


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text + "\n")


def build(root, link_layer, down=()):
    """link_layer InfiniBand or Ethernet; `down`: indexes of NICs whose port is down. Switch i: GPU at bus
    0x18 + 0x20 i, NIC at 0x19 + 0x20 i, sockets 0 (i < 4) and 1."""
    for i in range(8):
        socket = i // 4
        rp = "0000:%02x:01.0" % (0x15 + 0x20 * i)
        gpu, nic = "0000:%02x:00.0" % (0x18 + 0x20 * i), "0000:%02x:00.0" % (0x19 + 0x20 * i)
        sw = "/sys/devices/pci0000:%02x/%s/0000:%02x:00.0" % (0x15 + 0x20 * i, rp, 0x16 + 0x20 * i)
        for addr, vendor, cls in ((gpu, "0x10de", "0x030200"), (nic, "0x15b3", "0x020700")):
            dev = root + sw + "/0000:%02x:%02x.0/%s" % (0x17 + 0x20 * i, 0 if addr == gpu else 1, addr)
            write(dev + "/vendor", vendor)
            write(dev + "/class", cls)
            write(dev + "/numa_node", str(socket))
            os.makedirs(root + "/sys/bus/pci/devices", exist_ok=True)
            os.symlink(os.path.relpath(dev, root + "/sys/bus/pci/devices"), root + "/sys/bus/pci/devices/" + addr)
            if addr == nic:
                netdev = "ibp%ds0" % (0x19 + 0x20 * i) if link_layer == "InfiniBand" else "eth%d" % (i + 2)
                os.makedirs(dev + "/net/" + netdev, exist_ok=True)
                ib = root + "/sys/class/infiniband/mlx5_%d" % i
                os.makedirs(ib, exist_ok=True)
                os.symlink(os.path.relpath(dev, ib), ib + "/device")
                write(ib + "/fw_ver", "28.43.1014")
                write(ib + "/node_guid", "a088:c203:00%02x:0001" % i)
                port = ib + "/ports/1"
                active = i not in down
                os.makedirs(ib + "/tc/1", exist_ok=True)
                write(ib + "/tc/1/traffic_class", "0")
                write(port + "/state", "4: ACTIVE" if active else "1: DOWN")
                write(port + "/phys_state", "5: LinkUp" if active else "3: Disabled")
                write(port + "/link_layer", link_layer)
                if link_layer == "InfiniBand":
                    write(port + "/rate", "400 Gb/sec (4X NDR)")
                    write(port + "/lid", "0x%x" % (i + 10))
                    write(port + "/sm_lid", "0x1")
                    gids = [("fe80:0000:0000:0000:a088:c203:00%02x:0001" % i, "IB/RoCE v1")]
                else:
                    write(port + "/rate", "400 Gb/sec (4X)")
                    write(port + "/lid", "0x0")
                    write(port + "/sm_lid", "0x0")
                    ll = "fe80:0000:0000:0000:a288:c2ff:fe03:%04x" % i
                    v4 = "0000:0000:0000:0000:0000:ffff:0a00:%02x01" % i
                    gids = [(ll, "IB/RoCE v1"), (ll, "RoCE v2"), (v4, "IB/RoCE v1"), (v4, "RoCE v2")]
                for idx in range(255):  # the kernel lists the whole table, unused entries as zeros
                    gid, typ = gids[idx] if idx < len(gids) else ("0000:" * 7 + "0000", "")
                    write(port + "/gids/%d" % idx, gid)
                    if typ:
                        write(port + "/gid_attrs/types/%d" % idx, typ)
                        write(port + "/gid_attrs/ndevs/%d" % idx, netdev)
    return root
