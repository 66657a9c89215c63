/**
 * What the DBSC browser tests need of Chromium: the features that make Debian's chromium speak
 * DBSC with a software key (standing in for a TPM) and report it over CDP, and the events of
 * `Network.deviceBoundSessionEventOccurred` named by kind, in the order they came.
 */
export const DBSC_FEATURES =
  'DeviceBoundSessions,EnableBoundSessionCredentialsSoftwareKeysForManualTesting,DeviceBoundSessionsDevTools';

export interface DbscEvent {
  succeeded: boolean;
  sessionId?: string;
  creationEventDetails?: { fetchResult: string };
  challengeEventDetails?: { challengeResult: string };
  refreshEventDetails?: { refreshResult: string; fetchResult: string };
  terminationEventDetails?: { deletionReason: string };
}

/** `creation:Success`, `challenge:Success`, `refresh:Refreshed:Success`, `termination:…`. */
export function kindOf(event: DbscEvent): string {
  if (event.creationEventDetails) return `creation:${event.creationEventDetails.fetchResult}`;
  if (event.challengeEventDetails)
    return `challenge:${event.challengeEventDetails.challengeResult}`;
  if (event.refreshEventDetails)
    return `refresh:${event.refreshEventDetails.refreshResult}:${event.refreshEventDetails.fetchResult}`;
  if (event.terminationEventDetails)
    return `termination:${event.terminationEventDetails.deletionReason}`;
  return 'other';
}
