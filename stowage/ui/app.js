// Stowage's web view: a read-only picture of the cloud.
//
// Everything shown comes from the Placement API of the service that serves
// this page, read with the operator's token at microversion 1.39; the page
// itself holds no data. No build step and no library: one ES module, DOM
// built with textContent only (provider names are the API's data, never
// markup).

const MICROVERSION = "placement 1.39";
const TOKEN_KEY = "stowage.token";
// The API's root, wherever the service is mounted: this page is <root>/stowage/ui/.
const API_ROOT = new URL("../../", window.location.href);
const EXPLAIN_PATH = "stowage/allocation_candidates/explain";
// At or above: a class worth a look (amber), nearly out of room (red).
const NEARLY_FULL = 0.8;
const FULL = 0.95;
// Requests in flight at once while the capacity overview loads.
const CONCURRENCY = 8;
// Search results listed before "N more".
const SHOWN_RESULTS = 200;

const numbers = new Intl.NumberFormat("en");

class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
  }
}

// --- The API --------------------------------------------------------------

function token() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

async function api(path) {
  const response = await fetch(new URL(path, API_ROOT), {
    headers: {
      "X-Auth-Token": token() ?? "",
      "OpenStack-API-Version": MICROVERSION,
      Accept: "application/json",
    },
    cache: "no-store",
  });
  if (!response.ok) {
    throw new ApiError(response.status, await errorDetail(response));
  }
  return response.json();
}

// Placement's {"errors": [{"detail"}]}, or the 401's {"message"} / {"error": {"message"}}.
async function errorDetail(response) {
  try {
    const body = await response.json();
    return body.errors?.[0]?.detail || body.message || body.error?.message || response.statusText;
  } catch {
    return response.statusText;
  }
}

// Memoised per load: the tree and the capacity overview read the same providers.
let inventoryCache = new Map();

function inventoryOf(uuid) {
  if (!inventoryCache.has(uuid)) {
    const path = `resource_providers/${uuid}`;
    inventoryCache.set(
      uuid,
      Promise.all([api(`${path}/inventories`), api(`${path}/usages`)]).then(
        ([inventories, usages]) => ({ inventories: inventories.inventories, usages: usages.usages }),
      ),
    );
  }
  return inventoryCache.get(uuid);
}

// Placement's capacity of one inventory.
function capacity(inventory) {
  return Math.floor((inventory.total - inventory.reserved) * inventory.allocation_ratio);
}

async function inBatches(items, work) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  return results;
}

// --- DOM helpers ----------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

const $ = (id) => document.getElementById(id);

function fill(container, ...children) {
  container.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
}

function status(text, kind = "") {
  const line = $("status");
  line.textContent = text;
  line.className = `status ${kind}`;
}

function percent(fraction) {
  return `${Math.round(fraction * 100)}%`;
}

function level(fraction) {
  if (fraction >= FULL) return "full";
  if (fraction >= NEARLY_FULL) return "nearly-full";
  return "";
}

function bar(fraction, extraClass = "") {
  const filled = h("span", { class: "fill" });
  filled.style.width = `${Math.min(Math.max(fraction, 0), 1) * 100}%`;
  return h("span", { class: `bar ${level(fraction)} ${extraClass}` }, filled);
}

function providerName(uuid) {
  return state.byUuid.get(uuid)?.name ?? uuid;
}

function providerLink(uuid) {
  return h(
    "button",
    { type: "button", class: "link", "data-provider": uuid, title: uuid, onclick: () => showTree(uuid) },
    providerName(uuid),
  );
}

function consumerLink(consumer) {
  return h(
    "button",
    { type: "button", class: "link mono", "data-consumer": consumer, onclick: () => showConsumer(consumer) },
    consumer,
  );
}

function amounts(resources) {
  return Object.entries(resources)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([resourceClass, amount]) => `${resourceClass} ${numbers.format(amount)}`)
    .join(", ");
}

// Show an error where the data would be; a refused token sends the operator back to the login.
function failed(container, error) {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    status(
      error.status === 401
        ? `The token was refused (${error.message}).`
        : `This token may not read the API: the view needs an administrator's (${error.message}).`,
      "error",
    );
    if (error.status === 401) showLogin();
  }
  fill(container, h("p", { class: "error" }, `Could not load: ${error.message}`));
}

// --- State ----------------------------------------------------------------

const state = {
  providers: [],
  byUuid: new Map(),
};

// --- Providers and search -------------------------------------------------

async function loadCloud() {
  inventoryCache = new Map();
  status("Loading providers…");
  try {
    const body = await api("resource_providers");
    state.providers = body.resource_providers.sort((a, b) => a.name.localeCompare(b.name));
    state.byUuid = new Map(state.providers.map((provider) => [provider.uuid, provider]));
  } catch (error) {
    failed($("search-results"), error);
    return;
  }
  status(`${numbers.format(state.providers.length)} providers.`);
  renderSearch();
  $("providers").dataset.loaded = "true";
  await loadCapacity();
}

function renderSearch() {
  const text = $("search-text").value.trim().toLowerCase();
  const found = state.providers.filter(
    (provider) => !text || provider.name.toLowerCase().includes(text) || provider.uuid.includes(text),
  );
  const items = found.slice(0, SHOWN_RESULTS).map((provider) =>
    h(
      "li",
      { "data-provider": provider.uuid },
      providerLink(provider.uuid),
      provider.parent_provider_uuid
        ? h("small", {}, ` in ${providerName(provider.root_provider_uuid)}`)
        : h("small", { class: "root-mark" }, " root"),
    ),
  );
  if (found.length > SHOWN_RESULTS) {
    items.push(h("li", { class: "hint" }, `${numbers.format(found.length - SHOWN_RESULTS)} more: narrow the search`));
  }
  if (!found.length) items.push(h("li", { class: "hint" }, "No provider matches."));
  fill($("search-results"), items);
}

// --- A provider's tree ----------------------------------------------------

async function showTree(uuid) {
  const body = $("tree-body");
  const section = $("tree");
  delete section.dataset.loaded;
  fill(body, h("p", { class: "hint" }, "Loading…"));
  const root = state.byUuid.get(uuid)?.root_provider_uuid ?? uuid;
  try {
    const members = (await api(`resource_providers?in_tree=${root}`)).resource_providers;
    for (const member of members) state.byUuid.set(member.uuid, member);
    const details = await inBatches(members, async (member) => {
      const path = `resource_providers/${member.uuid}`;
      const [inventory, traits, aggregates] = await Promise.all([
        inventoryOf(member.uuid),
        api(`${path}/traits`),
        api(`${path}/aggregates`),
      ]);
      return { ...inventory, traits: traits.traits, aggregates: aggregates.aggregates };
    });
    const byUuid = new Map(members.map((member, index) => [member.uuid, { member, ...details[index] }]));
    fill(body, h("ul", { class: "tree" }, treeNode(byUuid, root, uuid)));
    section.dataset.loaded = "true";
  } catch (error) {
    failed(body, error);
    return;
  }
  await showProviderAllocations(uuid);
}

function treeNode(byUuid, uuid, selected) {
  const node = byUuid.get(uuid);
  const children = [...byUuid.values()]
    .filter((other) => other.member.parent_provider_uuid === uuid)
    .sort((a, b) => a.member.name.localeCompare(b.member.name));
  const classes = Object.keys(node.inventories).sort();
  return h(
    "li",
    {},
    h(
      "article",
      { class: `provider ${uuid === selected ? "selected" : ""}`, "data-provider": uuid },
      h(
        "header",
        {},
        h("strong", { class: "name" }, node.member.name),
        h("code", { class: "uuid" }, uuid),
        h("small", {}, `generation ${node.member.generation}`),
        h(
          "button",
          { type: "button", class: "link", onclick: () => showProviderAllocations(uuid) },
          "allocations",
        ),
      ),
      classes.length
        ? h("div", { class: "usages" }, classes.map((name) => usageRow(name, node.inventories[name], node.usages[name] ?? 0)))
        : h("p", { class: "hint" }, "No inventory."),
      chips("traits", "Traits", node.traits.sort()),
      chips("aggregates", "Aggregates", node.aggregates.sort()),
    ),
    children.length ? h("ul", {}, children.map((child) => treeNode(byUuid, child.member.uuid, selected))) : null,
  );
}

function usageRow(resourceClass, inventory, used) {
  const room = capacity(inventory);
  const fraction = room > 0 ? used / room : used > 0 ? 1 : 0;
  const detail =
    `total ${numbers.format(inventory.total)}, reserved ${numbers.format(inventory.reserved)}, ` +
    `allocation_ratio ${inventory.allocation_ratio}; min_unit ${inventory.min_unit}, ` +
    `max_unit ${numbers.format(inventory.max_unit)}, step_size ${inventory.step_size}`;
  return h(
    "div",
    { class: "usage", "data-class": resourceClass, title: detail },
    h("span", { class: "usage-label" }, `${resourceClass} ${numbers.format(used)} / ${numbers.format(room)}`),
    bar(fraction),
    h("span", { class: "percent" }, percent(fraction)),
  );
}

function chips(kind, label, names) {
  return h(
    "div",
    { class: `chips ${kind}` },
    h("span", { class: "chips-label" }, `${label}:`),
    names.length ? names.map((name) => h("span", { class: "chip", title: name }, name)) : h("span", { class: "hint" }, "none"),
  );
}

// --- Consumers and their allocations --------------------------------------

async function showProviderAllocations(uuid) {
  const container = $("provider-allocations");
  delete container.dataset.loaded;
  try {
    const body = await api(`resource_providers/${uuid}/allocations`);
    const consumers = Object.entries(body.allocations).sort(([a], [b]) => a.localeCompare(b));
    fill(
      container,
      h("h3", {}, `Consumers of ${providerName(uuid)}`),
      consumers.length
        ? h(
            "table",
            { class: "allocations" },
            h("thead", {}, h("tr", {}, h("th", {}, "Consumer"), h("th", {}, "Resources here"))),
            h(
              "tbody",
              {},
              consumers.map(([consumer, allocation]) =>
                h("tr", { "data-consumer": consumer }, h("td", {}, consumerLink(consumer)), h("td", {}, amounts(allocation.resources))),
              ),
            ),
          )
        : h("p", { class: "hint" }, "No allocations against this provider."),
    );
    container.dataset.loaded = "true";
  } catch (error) {
    failed(container, error);
  }
}

async function showConsumer(consumer) {
  const container = $("consumer-allocations");
  delete container.dataset.loaded;
  $("consumer-text").value = consumer;
  try {
    const body = await api(`allocations/${encodeURIComponent(consumer)}`);
    const providers = Object.entries(body.allocations).sort(([a], [b]) => providerName(a).localeCompare(providerName(b)));
    const facts = [
      ["project", body.project_id],
      ["user", body.user_id],
      ["type", body.consumer_type],
      ["generation", body.consumer_generation],
    ].filter(([, value]) => value !== undefined && value !== null);
    fill(
      container,
      h("h3", {}, "Consumer ", h("code", {}, consumer)),
      h("p", { class: "facts" }, facts.map(([name, value]) => h("span", {}, `${name} `, h("code", {}, String(value))))),
      providers.length
        ? h(
            "table",
            { class: "allocations" },
            h("thead", {}, h("tr", {}, h("th", {}, "Provider"), h("th", {}, "Resources"))),
            h(
              "tbody",
              {},
              providers.map(([uuid, allocation]) =>
                h("tr", { "data-provider": uuid }, h("td", {}, providerLink(uuid)), h("td", {}, amounts(allocation.resources))),
              ),
            ),
          )
        : h("p", { class: "hint" }, "This consumer has no allocations."),
    );
    container.dataset.loaded = "true";
  } catch (error) {
    failed(container, error);
  }
}

// --- Capacity across hosts ------------------------------------------------

async function loadCapacity() {
  const section = $("capacity");
  const body = $("capacity-body");
  delete section.dataset.loaded;
  const providers = state.providers;
  let done = 0;
  fill(body, h("p", { class: "hint" }, "Loading…"));
  let inventories;
  try {
    inventories = await inBatches(providers, async (provider) => {
      const inventory = await inventoryOf(provider.uuid);
      done += 1;
      if (done % 25 === 0) fill(body, h("p", { class: "hint" }, `Loading ${done} of ${providers.length} providers…`));
      return inventory;
    });
  } catch (error) {
    failed(body, error);
    return;
  }
  // (root, class) -> used and capacity over the root's tree.
  const byHost = new Map();
  const byClass = new Map();
  providers.forEach((provider, index) => {
    const { inventories: owned, usages } = inventories[index];
    for (const [resourceClass, inventory] of Object.entries(owned)) {
      const key = `${provider.root_provider_uuid} ${resourceClass}`;
      const row = byHost.get(key) ?? { root: provider.root_provider_uuid, resourceClass, used: 0, capacity: 0 };
      row.used += usages[resourceClass] ?? 0;
      row.capacity += capacity(inventory);
      byHost.set(key, row);
    }
  });
  const rows = [...byHost.values()].map((row) => ({ ...row, fraction: fraction(row) }));
  rows.sort(
    (a, b) =>
      b.fraction - a.fraction ||
      a.resourceClass.localeCompare(b.resourceClass) ||
      providerName(a.root).localeCompare(providerName(b.root)),
  );
  for (const row of rows) {
    const summary = byClass.get(row.resourceClass) ?? { resourceClass: row.resourceClass, used: 0, capacity: 0, hosts: 0, crowded: 0, fullest: row };
    summary.used += row.used;
    summary.capacity += row.capacity;
    summary.hosts += 1;
    if (row.fraction >= NEARLY_FULL) summary.crowded += 1;
    byClass.set(row.resourceClass, summary);
  }
  const classes = [...byClass.values()].sort((a, b) => b.fullest.fraction - a.fullest.fraction || a.resourceClass.localeCompare(b.resourceClass));
  if (!rows.length) {
    fill(body, h("p", { class: "hint" }, "No inventories yet."));
  } else {
    fill(body, classTable(classes), hostTable(rows));
  }
  section.dataset.loaded = "true";
}

function fraction(row) {
  if (row.capacity > 0) return row.used / row.capacity;
  return row.used > 0 ? 1 : 0;
}

function classTable(classes) {
  return h(
    "table",
    { class: "capacity by-class" },
    h("caption", {}, "By resource class"),
    h(
      "thead",
      {},
      h("tr", {}, ["Resource class", "Used / capacity (cloud)", "", `Hosts ≥ ${percent(NEARLY_FULL)}`, "Fullest host"].map((name) => h("th", {}, name))),
    ),
    h(
      "tbody",
      {},
      classes.map((summary) => {
        const cloud = fraction(summary);
        return h(
          "tr",
          { "data-class": summary.resourceClass, class: level(summary.fullest.fraction) },
          h("th", {}, summary.resourceClass),
          h("td", { class: "number" }, `${numbers.format(summary.used)} / ${numbers.format(summary.capacity)}`),
          h("td", {}, h("span", { class: "meter" }, bar(cloud), h("span", { class: "percent" }, percent(cloud)))),
          h("td", { class: "number" }, `${summary.crowded} of ${summary.hosts}`),
          h("td", {}, providerLink(summary.fullest.root), ` ${percent(summary.fullest.fraction)}`),
        );
      }),
    ),
  );
}

function hostTable(rows) {
  return h(
    "table",
    { class: "capacity by-host" },
    h("caption", {}, "By root provider and class, fullest first"),
    h("thead", {}, h("tr", {}, ["Resource class", "Root provider", "Used", "Capacity", "Used %"].map((name) => h("th", {}, name)))),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          { "data-class": row.resourceClass, "data-provider": row.root, class: level(row.fraction) },
          h("th", {}, row.resourceClass),
          h("td", {}, providerLink(row.root)),
          h("td", { class: "number" }, numbers.format(row.used)),
          h("td", { class: "number" }, numbers.format(row.capacity)),
          h("td", {}, h("span", { class: "meter" }, bar(row.fraction), h("span", { class: "percent" }, percent(row.fraction)))),
        ),
      ),
    ),
  );
}

// --- Explain: a query's funnel --------------------------------------------

async function explain(query) {
  const section = $("explain");
  const body = $("explain-body");
  delete section.dataset.loaded;
  fill(body, h("p", { class: "hint" }, "Explaining…"));
  let answer;
  try {
    answer = await api(`${EXPLAIN_PATH}?${query.replace(/^\?/, "")}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      fill(body, h("p", { class: "hint" }, "This Stowage does not explain queries (no GET /" + EXPLAIN_PATH + ")."));
    } else {
      failed(body, error);
    }
    section.dataset.loaded = "true";
    return;
  }
  // {"summary", "excluded_trees": {"unit", "examined", "excluded", "reasons"},
  // "groups": [{"group", "stages": [{"stage", "unit", "kept", "excluded"}]}],
  // "nearest_misses"}; a bare "stages" list is taken as the request's one group.
  const groups = answer.groups ?? [{ group: null, stages: answer.stages ?? [] }];
  fill(
    body,
    h("p", { class: "summary" }, answer.summary ?? ""),
    treeReasons(answer.excluded_trees, answer.trees ?? 0),
    groups.filter((group) => group.stages?.length).map(funnel),
    misses(answer.nearest_misses ?? []),
  );
  section.dataset.loaded = "true";
}

function treeReasons(excluded, trees) {
  // Each tree ruled out once, under the first reason that ruled it out: a bar
  // per reason against all the trees.
  const reasons = excluded?.reasons ?? [];
  if (!reasons.length) return null;
  return h(
    "div",
    { class: "tree-reasons" },
    h("h3", {}, `Trees ruled out: ${numbers.format(excluded.excluded ?? 0)} of ${numbers.format(trees)}, each under the first reason`),
    h(
      "ol",
      {},
      reasons.map((reason) => {
        const bar = h("span", { class: "fill lost" });
        bar.style.width = `${(reason.count / Math.max(1, trees)) * 100}%`;
        return h(
          "li",
          { class: "tree-reason", "data-reason": reason.reason, "data-stage": reason.stage },
          h("span", { class: "stage-bar" }, bar),
          h("span", { class: "reason-text" }, reason.text ?? `${numbers.format(reason.count)} × ${reason.reason}`),
          h("span", { class: "stage-name" }, reason.stage ?? ""),
        );
      }),
    ),
  );
}

function funnel(group) {
  // A stage's bar is what entered it, kept then excluded, against the most any stage saw.
  const widest = Math.max(1, ...group.stages.map((stage) => (stage.kept ?? 0) + excludedCount(stage)));
  return h(
    "div",
    { class: "funnel", "data-group": group.group ?? "" },
    h("h3", {}, group.group === null || group.group === undefined ? "The request as a whole" : `Group ${group.group || "(unsuffixed)"}`),
    h(
      "ol",
      {},
      group.stages.map((stage) => {
        const kept = stage.kept ?? 0;
        const lost = excludedCount(stage);
        const keptBar = h("span", { class: "fill kept" });
        keptBar.style.width = `${(kept / widest) * 100}%`;
        const lostBar = h("span", { class: "fill lost" });
        lostBar.style.width = `${(lost / widest) * 100}%`;
        return h(
          "li",
          { class: "stage", "data-stage": stage.stage },
          h("span", { class: "stage-name" }, stage.stage),
          h("span", { class: "stage-bar" }, keptBar, lostBar),
          h("span", { class: "stage-count" }, `kept ${numbers.format(kept)}`, lost ? `, excluded ${numbers.format(lost)}` : "", stage.unit ? ` ${stage.unit}` : ""),
          (stage.excluded ?? []).length
            ? h("ul", { class: "reasons" }, stage.excluded.map((reason) => h("li", {}, reasonText(reason))))
            : null,
        );
      }),
    ),
  );
}

function excludedCount(stage) {
  return (stage.excluded ?? []).reduce((sum, reason) => sum + (reason.count ?? 0), 0);
}

function reasonText(reason) {
  const parts = [`${numbers.format(reason.count ?? 0)} × ${reason.reason}`];
  if (reason.resource_class) parts.push(reason.resource_class);
  if (reason.trait) parts.push(reason.trait);
  if (reason.requested !== null && reason.requested !== undefined) parts.push(`need ${numbers.format(reason.requested)}`);
  if (reason.free !== null && reason.free !== undefined) parts.push(`best free ${numbers.format(reason.free)}`);
  if (reason.group) parts.push(`group ${reason.group}`);
  return parts.join(" · ");
}

function misses(nearest) {
  if (!nearest.length) return null;
  const show = (value) => (value === null || value === undefined ? "" : typeof value === "number" ? numbers.format(value) : value);
  return h(
    "table",
    { class: "misses" },
    h("caption", {}, "Nearest misses"),
    h("thead", {}, h("tr", {}, ["Provider", "Stage", "Reason", "Class / trait", "Requested", "Free", "Used / capacity"].map((name) => h("th", {}, name)))),
    h(
      "tbody",
      {},
      nearest.map((miss) =>
        h(
          "tr",
          {},
          h("td", {}, miss.provider ? providerLink(miss.provider) : ""),
          h("td", {}, `${miss.stage ?? ""}${miss.group ? ` (group ${miss.group})` : ""}`),
          h("td", {}, miss.reason ?? ""),
          h("td", {}, miss.resource_class ?? miss.trait ?? ""),
          h("td", { class: "number" }, show(miss.requested)),
          h("td", { class: "number" }, show(miss.free)),
          h("td", { class: "number" }, miss.capacity === null || miss.capacity === undefined ? "" : `${show(miss.used)} / ${show(miss.capacity)}`),
        ),
      ),
    ),
  );
}

// --- Login and start ------------------------------------------------------

function showLogin() {
  $("login").hidden = false;
  $("session").hidden = true;
  $("view").hidden = true;
}

function start() {
  if (!token()) {
    showLogin();
    status("Give an administrator's token to look at the cloud.");
    return;
  }
  $("login").hidden = true;
  $("session").hidden = false;
  $("view").hidden = false;
  loadCloud();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  window.sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  start();
});
$("logout").addEventListener("click", () => {
  window.sessionStorage.removeItem(TOKEN_KEY);
  for (const id of ["search-results", "tree-body", "provider-allocations", "consumer-allocations", "capacity-body", "explain-body"]) {
    fill($(id));
  }
  start();
});
$("reload").addEventListener("click", () => loadCloud());
$("search").addEventListener("submit", (event) => event.preventDefault());
$("search-text").addEventListener("input", renderSearch);
$("consumer-search").addEventListener("submit", (event) => {
  event.preventDefault();
  const consumer = $("consumer-text").value.trim();
  if (consumer) showConsumer(consumer);
});
$("explain-form").addEventListener("submit", (event) => {
  event.preventDefault();
  explain($("explain-query").value.trim());
});

start();
