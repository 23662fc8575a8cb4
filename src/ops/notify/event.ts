// PLACEHOLDER until branch agent-notify lands: the event shape agreed with it.
import type { EventType } from './targets.ts';

export interface AmberEvent {
  type: EventType;
  time: string;
  source?: string;
  repository?: string;
  writer?: string;
  code?: string;
  message: string;
  details?: Record<string, unknown>;
}
