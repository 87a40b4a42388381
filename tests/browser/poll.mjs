// Playwright's waitForFunction does not await an async predicate (a pending Promise is truthy,
// so it would pass at once). getStats() is async, so stats conditions are polled here instead:
// evaluate `fn(arg)` in the page until it is truthy (and return it), at most `timeout` ms, then fail.
export async function until(page, fn, arg, { timeout = 30_000, every = 250, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await page.evaluate(fn, arg);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}
