/** The 1x1 transparent GIF (42 bytes). */
export const PIXEL_GIF: Uint8Array = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
