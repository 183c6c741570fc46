/** Genesys Cloud regions, by the host suffix that both the API and the login service use. */
export const GENESYS_REGIONS = [
  'mypurecloud.com',
  'mypurecloud.ie',
  'mypurecloud.com.au',
  'mypurecloud.jp',
  'mypurecloud.de',
  'usw2.pure.cloud',
  'cac1.pure.cloud',
  'apne2.pure.cloud',
  'euw2.pure.cloud',
  'aps1.pure.cloud',
  'use2.us-gov-pure.cloud',
  'sae1.pure.cloud',
  'mec1.pure.cloud',
  'apne3.pure.cloud',
  'euc2.pure.cloud',
  'mxc1.pure.cloud',
  'apse1.pure.cloud',
  'edee1.eusc-pure.cloud',
] as const;

export type GenesysRegion = (typeof GENESYS_REGIONS)[number];

export function isGenesysRegion(value: string): value is GenesysRegion {
  return (GENESYS_REGIONS as readonly string[]).includes(value);
}

export function apiBaseUrlOf(region: GenesysRegion): string {
  return `https://api.${region}`;
}

export function loginBaseUrlOf(region: GenesysRegion): string {
  return `https://login.${region}`;
}
