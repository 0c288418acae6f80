# SPDX-License-Identifier: Apache-2.0
# The disk mapper inside a guest (sourced by the harness /init after its prelude).
# Disks: vda blank, vdb a host-made LUKS2 header with 512-byte sectors, vdc initialized on the
# host but without a file system, vdd an ext4 image (mounted here), vde a GPT disk whose
# partition is named cloister-state-e2e, vdf blank (authenticated mode). Each step reports
# "STEP name rc" and its output.
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
step format-held $DM format --device /dev/vda --key-file /tmp/k1
step close-again $DM close --mount /state --bind $BINDS
step open-deviant $DM open --device /dev/vdb --key-file /tmp/k1
report "MAPPER-AFTER-DEVIANT $(ls /dev/mapper)"
step open-no-fs $DM open --device /dev/vdc --key-file /tmp/k2 --mount /state2
report "MAPPER-AFTER-NO-FS $(ls /dev/mapper)"
mkdir -p /boot && mount -t ext4 /dev/vdd /boot
step open-mounted $DM open --device /dev/vdd --key-file /tmp/k1
step partlabel $DM status --partlabel cloister-state-e2e
# The second partition of that disk becomes "the boot disk's" /boot/efi: the first must now be
# refused, found through the whole disk it shares with a system mount.
mke2fs -q -F /dev/vde2 > /dev/null 2>&1
mkdir -p /boot/efi && mount -t ext4 /dev/vde2 /boot/efi
step boot-disk $DM open --partlabel cloister-state-e2e --key-file /tmp/k1
# Authenticated mode: a changed sector must read as an error, never as other data.
step format-integrity $DM format --device /dev/vdf --key-file /tmp/k1
step status-integrity $DM status --device /dev/vdf
step open-integrity $DM open --device /dev/vdf --key-file /tmp/k1 --name integ --mount /istate
dd if=/dev/urandom of=/istate/blob bs=1M count=20 2>/dev/null
sync
report "ISUM-WRITTEN $(sha256sum /istate/blob | cut -d' ' -f1)"
step close-integrity $DM close --name integ --mount /istate
step reopen-integrity $DM open --device /dev/vdf --key-file /tmp/k1 --name integ --mount /istate
report "ISUM-READ $(sha256sum /istate/blob | cut -d' ' -f1)"
$DM close --name integ --mount /istate > /dev/null 2>&1
# The host's move: change ciphertext in the data area (1 MiB in the middle of the blob's range).
dd if=/dev/zero of=/dev/vdf bs=1M seek=30 count=1 conv=notrunc 2>/dev/null
sync
step open-tampered $DM open --device /dev/vdf --key-file /tmp/k1 --name integ --mount /istate
if grep -q " /istate " /proc/mounts; then
        cat /istate/blob > /dev/null 2>/tmp/readerr
        report "TAMPERED-READ-RC $?"
        $DM close --name integ --mount /istate > /dev/null 2>&1
else
        report "TAMPERED-READ-RC mount-failed"
fi
report "DMESG-INTEGRITY $(dmesg | grep -ciE 'INTEGRITY AEAD ERROR|checksum failed')"
# The boot-time flow: setup formats a blank disk with a first-boot key on tmpfs, reopens it while
# that key exists, formats it again once the key is gone (a reboot before joining), and after
# the re-key needs the disk key.
step setup-first $DM setup --device /dev/vdg --name g --mount /gstate --bind /var/lib/etcd
report "FBK-SIZE $(wc -c < /run/cloister/first-boot.key)"
report "UUID-1 $($DM status --device /dev/vdg -o json | grep uuid)"
echo pre-join > /var/lib/etcd/keep.txt
$DM close --name g --mount /gstate --bind /var/lib/etcd > /dev/null 2>&1
step setup-restart $DM setup --device /dev/vdg --name g --mount /gstate --bind /var/lib/etcd
report "KEEP-AFTER-RESTART $(cat /var/lib/etcd/keep.txt 2>&1)"
$DM close --name g --mount /gstate --bind /var/lib/etcd > /dev/null 2>&1
rm /run/cloister/first-boot.key
step setup-after-reboot $DM setup --device /dev/vdg --name g --mount /gstate
report "UUID-2 $($DM status --device /dev/vdg -o json | grep uuid)"
echo joined > /gstate/joined.txt
$DM close --name g --mount /gstate > /dev/null 2>&1
step rekey-g $DM rekey --device /dev/vdg --key-file /run/cloister/first-boot.key --new-key-file /tmp/k2
step setup-no-key $DM setup --device /dev/vdg --name g --mount /gstate
step setup-disk-key $DM setup --device /dev/vdg --name g --mount /gstate --key-file /tmp/k2
report "JOINED $(cat /gstate/joined.txt 2>&1)"
$DM close --name g --mount /gstate > /dev/null 2>&1
step setup-not-tmpfs $DM setup --device /dev/vdg --mount /x --first-boot-key /boot/fbk
report HARNESS-END
poweroff -f
