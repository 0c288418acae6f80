# SPDX-License-Identifier: Apache-2.0
# The disk mapper inside a guest (sourced by the harness /init after its prelude).
# Disks: vda blank, vdb a host-made LUKS2 header with 512-byte sectors, vdc initialized on the
# host but without a file system, vdd an ext4 image (mounted here), vde a GPT disk whose
# partition is named cloister-state-e2e. Each step reports "STEP name rc" and its output.
export DM_DISABLE_UDEV=1
mkdir -p /run/cryptsetup
DM=/bin/cloister-disk-mapper
step() {
        name=$1; shift
        "$@" > /tmp/out 2>&1
        report "STEP $name $?"
        sed 's/^/| /' /tmp/out >&3
}
printf 'first-boot-key-0123456789abcdef' > /tmp/k1
printf 'attested-disk-key-0123456789abcd' > /tmp/k2
BINDS=/var/lib/kubelet,/etc/kubernetes
mkdir -p /var/lib/kubelet /etc/kubernetes
echo "shipped with the image" > /etc/kubernetes/from-image

report HARNESS-BEGIN
step format $DM format --device /dev/vda --key-file /tmp/k1
step open-first $DM open --device /dev/vda --key-file /tmp/k1 --mount /state --bind $BINDS
step status-open $DM status --device /dev/vda -o json
echo CLOISTER-PLAINTEXT-MARKER > /var/lib/kubelet/secret.txt
dd if=/dev/urandom of=/var/lib/kubelet/blob bs=1M count=8 2>/dev/null
report "SUM-WRITTEN $(sha256sum /var/lib/kubelet/blob | cut -d' ' -f1)"
report "SEEDED $(cat /state/etc/kubernetes/from-image 2>&1)"
sync
step close $DM close --mount /state --bind $BINDS
report "RAW-PLAINTEXT $(grep -c CLOISTER-PLAINTEXT-MARKER /dev/vda)"
report "MAPPER-AFTER-CLOSE $(ls /dev/mapper)"
step rekey $DM rekey --device /dev/vda --key-file /tmp/k1 --new-key-file /tmp/k2
step open-old-key $DM open --device /dev/vda --key-file /tmp/k1
step open-new-key $DM open --device /dev/vda --key-file /tmp/k2 --mount /state --bind $BINDS
report "SUM-READ $(sha256sum /var/lib/kubelet/blob | cut -d' ' -f1)"
report "READ $(cat /var/lib/kubelet/secret.txt)"
step open-twice $DM open --device /dev/vda --key-file /tmp/k2
step close-again $DM close --mount /state --bind $BINDS
step open-deviant $DM open --device /dev/vdb --key-file /tmp/k1
report "MAPPER-AFTER-DEVIANT $(ls /dev/mapper)"
step open-no-fs $DM open --device /dev/vdc --key-file /tmp/k2 --mount /state2
report "MAPPER-AFTER-NO-FS $(ls /dev/mapper)"
mkdir -p /boot && mount -t ext4 /dev/vdd /boot
step open-mounted $DM status --device /dev/vdd
step partlabel $DM status --partlabel cloister-state-e2e
report HARNESS-END
poweroff -f
