/**
 * The hardware inventory in ironic-python-agent's shape (hardware.py
 * list_hardware_info; research: ipa.md §5.1), which Ironic's continue_inspection
 * and ironic-inspector's /v1/continue validate and store.
 */
export interface InventoryInterface {
  name: string;
  mac_address: string;
  ipv4_address: string | null;
  ipv6_address: string | null;
  has_carrier: boolean;
  lldp: null;
  vendor: string | null;
  product: string | null;
  client_id: null;
  biosdevname: null;
  speed_mbps: number | null;
  pci_address: string | null;
  driver: string | null;
}

export interface InventoryCpu {
  model_name: string | null;
  /** MHz, as a string (IPA reads it from lscpu). */
  frequency: string | null;
  count: number;
  architecture: string;
  flags: string[];
  socket_count: number | null;
}

export interface InventoryDisk {
  /** Device path, e.g. /dev/sda. */
  name: string;
  model: string | null;
  /** Bytes. */
  size: number;
  rotational: boolean;
  wwn: string | null;
  serial: string | null;
  vendor: string | null;
  wwn_with_extension: string | null;
  wwn_vendor_extension: string | null;
  hctl: string | null;
  by_path: string | null;
  logical_sectors: number | null;
  physical_sectors: number | null;
  tran: string | null;
}

export interface Inventory {
  interfaces: InventoryInterface[];
  cpu: InventoryCpu;
  disks: InventoryDisk[];
  memory: { total: number; physical_mb: number };
  /** IPv4 LAN address of the BMC; `0.0.0.0` when none is set, null when there is no BMC or it was not read. */
  bmc_address: string | null;
  /** IPv6 address of the BMC; `::/0` when none, null as above. */
  bmc_v6address: string | null;
  /** Present only when the BMC reported a valid MAC (IPA omits the key otherwise). */
  bmc_mac?: string;
  system_vendor: {
    product_name: string | null;
    serial_number: string | null;
    manufacturer: string | null;
    firmware: { vendor: string | null; version: string | null; build_date: string | null };
  };
  boot: { current_boot_mode: 'bios' | 'uefi'; pxe_interface: string | null };
  hostname: string;
}
