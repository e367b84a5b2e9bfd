/**
 * Collects the inventory in IPA's shape (research: ipa.md §5.1) from
 * `systeminformation` and sysfs, plus the BMC's LAN address read in-band through
 * the transport (no `ipmitool lan print` parsing). systeminformation is imported
 * lazily: loading it costs tens of ms the daemon does not need at start-up.
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { hostname as osHostname, machine } from 'node:os';
import { basename } from 'node:path';
import type { Inventory, InventoryDisk, InventoryInterface } from './types.js';

/** What the BMC says about its LAN channel (service/ BmcReader.lanAddress satisfies this). */
export interface BmcLanInfo {
  address?: string;
  v6address?: string;
  mac?: string;
}

/** The parts of systeminformation used here (injectable for tests). */
export interface SystemInformation {
  networkInterfaces(): Promise<unknown>;
  cpu(): Promise<{ manufacturer: string; brand: string; speed: number; speedMax: number; cores: number; processors: number; flags?: string }>;
  cpuFlags(): Promise<string>;
  mem(): Promise<{ total: number }>;
  memLayout(): Promise<Array<{ size: number }>>;
  blockDevices(): Promise<Array<{ name: string; type: string; size: number; model: string; serial: string; removable: boolean; protocol: string; device?: string }>>;
  system(): Promise<{ manufacturer: string; model: string; serial: string }>;
  bios(): Promise<{ vendor: string; version: string; releaseDate: string }>;
}

interface SiInterface {
  iface: string;
  mac: string;
  ip4: string;
  ip6: string;
  internal: boolean;
  operstate: string;
  speed: number | null;
}

export interface InventoryOptions {
  /** Reads the BMC LAN address in-band; absent or null: no BMC (bmc_* null). */
  readBmcLan?: (() => Promise<BmcLanInfo | null>) | undefined;
  /** Logged when the BMC read fails (the inventory is still returned). */
  logger?: { warn(message: string, meta?: object): unknown };
  /** Defaults to the real module, imported on first use. */
  si?: SystemInformation;
  /** Root for /sys and /proc reads (tests point it at a fixture tree). */
  root?: string;
}

let siModule: Promise<SystemInformation> | undefined;
function loadSi(): Promise<SystemInformation> {
  siModule ??= import('systeminformation').then((m) => (m.default ?? m) as unknown as SystemInformation);
  return siModule;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

function linkName(path: string): string | null {
  try {
    return basename(readlinkSync(path));
  } catch {
    return null;
  }
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** `BOOTIF=01-aa-bb-cc-dd-ee-ff` (pxelinux/iPXE) on the kernel command line → `aa:bb:cc:dd:ee:ff`. */
export function bootifMac(cmdline: string): string | null {
  const m = /(?:^|\s)BOOTIF=(?:01-)?([0-9A-Fa-f]{2}(?:[-:][0-9A-Fa-f]{2}){5})(?:\s|$)/.exec(cmdline);
  return m ? m[1]!.replace(/-/g, ':').toLowerCase() : null;
}

/** Node's machine() already speaks uname's names (x86_64, aarch64, ppc64le). */
function architecture(): string {
  return machine();
}

function interfaces(list: SiInterface[], root: string): InventoryInterface[] {
  const out: InventoryInterface[] = [];
  for (const n of list) {
    const mac = (n.mac ?? '').toLowerCase();
    if (n.internal || !MAC_RE.test(mac) || mac === '00:00:00:00:00:00') continue;
    const sys = `${root}/sys/class/net/${n.iface}`;
    const carrier = readText(`${sys}/carrier`);
    const speed = typeof n.speed === 'number' && n.speed > 0 ? n.speed : null;
    out.push({
      name: n.iface,
      mac_address: mac,
      ipv4_address: n.ip4 || null,
      ipv6_address: n.ip6 || null,
      has_carrier: carrier !== null ? carrier === '1' : n.operstate === 'up',
      lldp: null,
      vendor: readText(`${sys}/device/vendor`),
      product: readText(`${sys}/device/device`),
      client_id: null,
      biosdevname: null,
      speed_mbps: speed,
      pci_address: linkName(`${sys}/device`),
      driver: linkName(`${sys}/device/driver`),
    });
  }
  return out;
}

/** Whole disks only: no loop, ram, zram or empty devices (IPA lists lsblk TYPE=disk with a size). */
function disks(list: Awaited<ReturnType<SystemInformation['blockDevices']>>, root: string): InventoryDisk[] {
  const out: InventoryDisk[] = [];
  for (const d of list) {
    if (d.type !== 'disk' || !(d.size > 0) || /^(loop|ram|zram)\d*/.test(d.name)) continue;
    const q = `${root}/sys/block/${d.name}/queue`;
    const rota = readText(`${q}/rotational`);
    const logical = Number(readText(`${q}/logical_block_size`));
    const physical = Number(readText(`${q}/physical_block_size`));
    out.push({
      name: d.device ?? `/dev/${d.name}`,
      model: d.model || null,
      size: d.size,
      rotational: rota !== null ? rota === '1' : false,
      wwn: readText(`${root}/sys/block/${d.name}/device/wwid`),
      serial: d.serial || null,
      vendor: readText(`${root}/sys/block/${d.name}/device/vendor`),
      wwn_with_extension: null,
      wwn_vendor_extension: null,
      hctl: null,
      by_path: null,
      logical_sectors: Number.isFinite(logical) && logical > 0 ? logical : null,
      physical_sectors: Number.isFinite(physical) && physical > 0 ? physical : null,
      tran: d.protocol || null,
    });
  }
  return out;
}

/** IPA's convention: `0.0.0.0` / `::/0` when the BMC has no address, null when there is no BMC to ask. */
async function bmc(o: InventoryOptions): Promise<Pick<Inventory, 'bmc_address' | 'bmc_v6address' | 'bmc_mac'>> {
  if (!o.readBmcLan) return { bmc_address: null, bmc_v6address: null };
  let lan: BmcLanInfo | null;
  try {
    lan = await o.readBmcLan();
  } catch (err) {
    o.logger?.warn(`could not read the BMC's LAN address in-band: ${err instanceof Error ? err.message : String(err)}`);
    return { bmc_address: null, bmc_v6address: null };
  }
  if (!lan) return { bmc_address: null, bmc_v6address: null };
  const mac = lan.mac?.toLowerCase();
  return {
    bmc_address: lan.address || '0.0.0.0',
    bmc_v6address: lan.v6address || '::/0',
    ...(mac && MAC_RE.test(mac) && mac !== '00:00:00:00:00:00' ? { bmc_mac: mac } : {}),
  };
}

export async function collectInventory(o: InventoryOptions = {}): Promise<Inventory> {
  const root = o.root ?? '';
  const si = o.si ?? (await loadSi());
  const [nets, cpu, flags, mem, memLayout, blocks, sys, bios, bmcInfo] = await Promise.all([
    si.networkInterfaces(), si.cpu(), si.cpuFlags(), si.mem(), si.memLayout().catch(() => []), si.blockDevices(),
    si.system(), si.bios(), bmc(o),
  ]);
  const netList = (Array.isArray(nets) ? nets : [nets]) as SiInterface[];
  const ifaces = interfaces(netList, root);
  // physical_mb: installed DIMMs when dmidecode-style data exists, else usable RAM (IPA does the same fallback).
  const dimmBytes = memLayout.reduce((s, m) => s + (Number(m.size) || 0), 0);
  const physicalMb = Math.round((dimmBytes > 0 ? dimmBytes : mem.total) / 1024 ** 2);
  const mhz = (cpu.speedMax || cpu.speed) * 1000;
  const cmdline = readText(`${root}/proc/cmdline`) ?? '';
  const bootif = bootifMac(cmdline);
  const clean = (s: string | undefined): string | null => (s && s !== '-' && s.trim() ? s.trim() : null);
  return {
    interfaces: ifaces,
    cpu: {
      model_name: clean(`${cpu.manufacturer} ${cpu.brand}`),
      frequency: mhz > 0 ? String(Math.round(mhz)) : null,
      count: cpu.cores,
      architecture: architecture(),
      flags: (flags || cpu.flags || '').split(/\s+/).filter(Boolean),
      socket_count: cpu.processors || null,
    },
    disks: disks(blocks, root),
    memory: { total: mem.total, physical_mb: physicalMb },
    ...bmcInfo,
    system_vendor: {
      product_name: clean(sys.model),
      serial_number: clean(sys.serial),
      manufacturer: clean(sys.manufacturer),
      firmware: { vendor: clean(bios.vendor), version: clean(bios.version), build_date: clean(bios.releaseDate) },
    },
    boot: {
      current_boot_mode: existsSync(`${root}/sys/firmware/efi`) ? 'uefi' : 'bios',
      pxe_interface: bootif,
    },
    hostname: osHostname(),
  };
}
