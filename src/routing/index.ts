export * from './classifier.js';
export * from './router.js';
export * from './tokens.js';
