/** The provider endpoints a configuration means: the simulator for every provider when it names one, else its own. */
import type { SwitchyardConfig } from '../config/config.js';
import { simulatorEndpoints } from '../simulator/endpoints.js';
import type { ProviderEndpoints } from './registry.js';

export function providerEndpointsFor(config: Pick<SwitchyardConfig, 'simulatorUrl' | 'providers'>): ProviderEndpoints {
  return config.simulatorUrl ? simulatorEndpoints(config.simulatorUrl) : config.providers;
}
