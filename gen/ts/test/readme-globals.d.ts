// What the README's snippets leave to the app; TestSDKPackage compiles each snippet with these.
declare const auth: { accessToken: string; refresh(): Promise<string> };
declare const soloId: string;
declare const classId: string;
declare const sessionId: string;
declare const webhookSecret: string;
declare function showBanner(text: string): void;
declare function showFieldError(field: string, message: string): void;
