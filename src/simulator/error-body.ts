/** Genesys' ErrorBody, as the API returns it (GENESYS.md). */
export interface ErrorBody {
  message: string;
  code: string;
  status: number;
  contextId: string;
  details: { errorCode?: string; fieldName?: string; entityId?: string; entityName?: string }[];
  errors: unknown[];
  messageWithParams?: string;
  messageParams?: Record<string, string>;
}

export function errorBody(
  status: number,
  code: string,
  message: string,
  contextId: string,
  details: ErrorBody['details'] = [],
): ErrorBody {
  return { message, code, status, contextId, details, errors: [] };
}
