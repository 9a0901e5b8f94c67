// Names each module of the API reference after its import specifier (`@sluice/core/testing`)
// instead of its folder (`core/src/testing`).
import { Converter } from "typedoc";

const FOLDER = /^(?:packages\/)?([\w-]+)\/src(?:\/(.+?))?(?:\/index)?$/;

export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const mod of context.project.children ?? []) {
      const m = FOLDER.exec(mod.name);
      if (m) mod.name = `@sluice/${m[1]}${m[2] ? `/${m[2]}` : ""}`;
    }
  });
}
