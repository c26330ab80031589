// The bare specifier 'react' for pages without a bundler: an import map
// points it here, and this module re-exports the UMD build that the page
// loaded with <script src="/node_modules/react/umd/react.development.js">.
// Harmless when run outside a browser (node --test may pick it up).
const React = globalThis.React;
if (!React && typeof window !== 'undefined')
  throw new Error('react-shim.js: load react/umd/react.development.js before importing "react"');
export default React;
export const {
  Children, Component, Fragment, Profiler, PureComponent, StrictMode, Suspense,
  __SECRET_INTERNALS_DO_NOT_USE_OR_YOU_WILL_BE_FIRED,
  act, cloneElement, createContext, createElement, createFactory, createRef,
  forwardRef, isValidElement, lazy, memo, startTransition, unstable_act,
  useCallback, useContext, useDebugValue, useDeferredValue, useEffect, useId,
  useImperativeHandle, useInsertionEffect, useLayoutEffect, useMemo, useReducer,
  useRef, useState, useSyncExternalStore, useTransition, version,
} = React || {};
