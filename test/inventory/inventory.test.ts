/**
 * Inventory: IPA's shape from a scripted systeminformation and a sysfs fixture
 * tree, and once from this machine's real systeminformation.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bootifMac, collectInventory, type SystemInformation } from '../../agent/inventory/index.js';

const root = mkdtempSync(join(tmpdir(), 'inventory-'));
after(() => rmSync(root, { recursive: true, force: true }));

function file(path: string, text: string): void {
  mkdirSync(join(root, path, '..'), { recursive: true });
  writeFileSync(join(root, path), text);
}

file('proc/cmdline', 'BOOT_IMAGE=/vmlinuz ipa-api-url=http://192.0.2.1:6385 BOOTIF=01-52-54-00-12-34-56 quiet\n');
file('sys/class/net/eth0/carrier', '1\n');
file('sys/class/net/eth0/device/vendor', '0x1af4\n');
file('sys/class/net/eth0/device/device', '0x1000\n');
file('sys/block/sda/queue/rotational', '1\n');
file('sys/block/sda/queue/logical_block_size', '512\n');
file('sys/block/sda/queue/physical_block_size', '4096\n');
file('sys/block/nvme0n1/queue/rotational', '0\n');
mkdirSync(join(root, 'sys/firmware/efi'), { recursive: true });
mkdirSync(join(root, 'drivers/virtio_net'), { recursive: true });
symlinkSync(join(root, 'drivers/virtio_net'), join(root, 'sys/class/net/eth0/device/driver'));

const fakeSi: SystemInformation = {
  networkInterfaces: async () => [
    { iface: 'lo', mac: '00:00:00:00:00:00', ip4: '127.0.0.1', ip6: '::1', internal: true, operstate: 'unknown', speed: null },
    { iface: 'eth0', mac: '52:54:00:12:34:56', ip4: '192.0.2.10', ip6: 'fe80::1', internal: false, operstate: 'up', speed: 10000 },
    { iface: 'eth1', mac: '52:54:00:AB:CD:EF', ip4: '', ip6: '', internal: false, operstate: 'down', speed: -1 },
  ],
  cpu: async () => ({ manufacturer: 'Intel', brand: 'Xeon Gold 6338', speed: 2, speedMax: 3.2, cores: 64, processors: 2 }),
  cpuFlags: async () => 'fpu vme vmx aes',
  mem: async () => ({ total: 270_000_000_000 }),
  memLayout: async () => [{ size: 137438953472 }, { size: 137438953472 }],
  blockDevices: async () => [
    { name: 'sda', type: 'disk', size: 960197124096, model: 'SAMSUNG MZ7L3960', serial: 'S6KL', removable: false, protocol: 'sata' },
    { name: 'sda1', type: 'part', size: 1000, model: '', serial: '', removable: false, protocol: '' },
    { name: 'nvme0n1', type: 'disk', size: 3840755982336, model: 'PM9A3', serial: 'N1', removable: false, protocol: 'nvme' },
    { name: 'loop0', type: 'disk', size: 4096, model: '', serial: '', removable: false, protocol: '' },
    { name: 'zram0', type: 'disk', size: 0, model: '', serial: '', removable: false, protocol: '' },
  ],
  system: async () => ({ manufacturer: 'Supermicro', model: 'SYS-1029U', serial: '-' }),
  bios: async () => ({ vendor: 'American Megatrends', version: '3.4', releaseDate: '2023-01-01' }),
};

describe('inventory', () => {
  it('maps systeminformation and sysfs into IPA\'s inventory shape', async () => {
    const inv = await collectInventory({ si: fakeSi, root, readBmcLan: async () => ({ address: '10.0.0.5', mac: '0C:C4:7A:00:00:01' }) });
    assert.deepEqual(inv.interfaces.map((i) => [i.name, i.mac_address, i.has_carrier]), [['eth0', '52:54:00:12:34:56', true], ['eth1', '52:54:00:ab:cd:ef', false]]);
    const eth0 = inv.interfaces[0]!;
    assert.equal(eth0.ipv4_address, '192.0.2.10');
    assert.equal(eth0.vendor, '0x1af4');
    assert.equal(eth0.driver, 'virtio_net');
    assert.equal(eth0.speed_mbps, 10000);
    assert.equal(eth0.lldp, null);
    assert.equal(inv.interfaces[1]!.ipv4_address, null);
    assert.deepEqual(inv.cpu, { model_name: 'Intel Xeon Gold 6338', frequency: '3200', count: 64, architecture: inv.cpu.architecture, flags: ['fpu', 'vme', 'vmx', 'aes'], socket_count: 2 });
    assert.deepEqual(inv.memory, { total: 270_000_000_000, physical_mb: 262144 });
    assert.deepEqual(inv.disks.map((d) => [d.name, d.rotational, d.tran]), [['/dev/sda', true, 'sata'], ['/dev/nvme0n1', false, 'nvme']]);
    assert.equal(inv.disks[0]!.physical_sectors, 4096);
    assert.deepEqual(inv.system_vendor, { product_name: 'SYS-1029U', serial_number: null, manufacturer: 'Supermicro',
      firmware: { vendor: 'American Megatrends', version: '3.4', build_date: '2023-01-01' } });
    assert.deepEqual(inv.boot, { current_boot_mode: 'uefi', pxe_interface: '52:54:00:12:34:56' });
    assert.equal(inv.bmc_address, '10.0.0.5');
    assert.equal(inv.bmc_v6address, '::/0');
    assert.equal(inv.bmc_mac, '0c:c4:7a:00:00:01');
  });

  it('uses null BMC fields when there is no BMC, and leaves bmc_mac out when it is not valid', async () => {
    const none = await collectInventory({ si: fakeSi, root });
    assert.equal(none.bmc_address, null);
    assert.equal(none.bmc_v6address, null);
    assert.equal('bmc_mac' in none, false);
    const unset = await collectInventory({ si: fakeSi, root, readBmcLan: async () => ({ mac: '00:00:00:00:00:00' }) });
    assert.equal(unset.bmc_address, '0.0.0.0');
    assert.equal('bmc_mac' in unset, false);
  });

  it('still returns an inventory when the in-band BMC read fails, and says why', async () => {
    const warnings: string[] = [];
    const inv = await collectInventory({ si: fakeSi, root, logger: { warn: (m: string) => warnings.push(m) },
      readBmcLan: async () => { throw new Error('EIO'); } });
    assert.equal(inv.bmc_address, null);
    assert.match(warnings[0]!, /could not read the BMC's LAN address in-band: EIO/);
  });

  it('parses BOOTIF in both dash and colon forms', () => {
    assert.equal(bootifMac('x BOOTIF=01-AA-bb-cc-dd-ee-ff y'), 'aa:bb:cc:dd:ee:ff');
    assert.equal(bootifMac('BOOTIF=aa:bb:cc:dd:ee:ff'), 'aa:bb:cc:dd:ee:ff');
    assert.equal(bootifMac('ipa-api-url=x'), null);
  });

  it('collects a usable inventory from this machine with the real systeminformation', async () => {
    const inv = await collectInventory();
    assert.ok(inv.cpu.count >= 1);
    assert.ok(inv.memory.total > 0 && inv.memory.physical_mb > 0);
    assert.ok(inv.hostname.length > 0);
    assert.ok(['bios', 'uefi'].includes(inv.boot.current_boot_mode));
    for (const i of inv.interfaces) assert.match(i.mac_address, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.ok(!inv.interfaces.some((i) => i.name === 'lo'));
  });
});
