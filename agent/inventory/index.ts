export { bootifMac, collectInventory, type BmcLanInfo, type InventoryOptions, type SystemInformation } from './collect.js';
export type * from './types.js';
