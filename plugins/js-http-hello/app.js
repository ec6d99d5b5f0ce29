// A `wasi:http/proxy` component in plain JavaScript, built with
// componentize-js (StarlingMonkey's fetch event) against the WASI 0.2 WIT
// alone: no fuelhost SDK. `/spin` loops until its fuel runs out; any other
// path is answered with a greeting naming it.
addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.pathname.startsWith("/spin")) {
    let n = 0;
    for (;;) {
      n += 1;
    }
  }
  event.respondWith(
    new Response(`Hello from JavaScript over wasi:http at ${url.pathname}${url.search}\n`, {
      headers: { "content-type": "text/plain" },
    }),
  );
});
