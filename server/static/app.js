// JEBOL SIPERA supervisor UI: lightbox for photos, keyboard triage, the map. Plain ES modules;
// the libraries come from npm (web/package.json), copied to /static/vendor by `make`.

const galleries = document.querySelectorAll("#gallery, .board-group");

async function lightbox() {
  if (!galleries.length) return;
  let PhotoSwipeLightbox;
  try {
    ({ default: PhotoSwipeLightbox } = await import("/static/vendor/photoswipe/photoswipe-lightbox.esm.min.js"));
  } catch (error) {
    console.warn("PhotoSwipe is not built (run make); photos open as links", error);
    return;
  }
  for (const gallery of galleries) {
    const box = new PhotoSwipeLightbox({
      gallery, children: "a.photo",
      pswpModule: () => import("/static/vendor/photoswipe/photoswipe.esm.min.js"),
      wheelToZoom: true,
    });
    box.addFilter("itemData", (data) => {
      const thumb = data.element && data.element.querySelector("img");
      if (thumb && thumb.naturalWidth) {
        const scale = 1600 / Math.max(thumb.naturalWidth, thumb.naturalHeight);
        data.width = Math.round(thumb.naturalWidth * scale);
        data.height = Math.round(thumb.naturalHeight * scale);
      }
      return data;
    });
    box.on("uiRegister", () => {
      box.pswp.ui.registerElement({
        name: "custom-caption", order: 9, isButton: false, appendTo: "root",
        onInit: (el, pswp) => {
          pswp.on("change", () => {
            const source = pswp.currSlide.data.element;
            const caption = source && source.parentElement.querySelector(".caption");
            // The caption's own nodes, cloned: markup is never parsed from text here.
            el.replaceChildren(...(caption ? caption.cloneNode(true).childNodes : []));
            if (window.htmx) window.htmx.process(el);
          });
        },
      });
    });
    box.on("afterInit", () => {
      const keys = (event) => {
        if (["TEXTAREA", "INPUT"].includes(document.activeElement.tagName)) return;
        const button = box.pswp.element.querySelector(`.pswp__custom-caption button[data-key="${event.key}"]`);
        if (!button) return;
        const comment = button.form.querySelector("textarea");
        if (button.value !== "approved" && comment && !comment.value.trim()) {
          comment.focus();
          comment.placeholder = comment.dataset.required || comment.placeholder;
          return;
        }
        button.click();
      };
      document.addEventListener("keydown", keys);
      box.pswp.on("destroy", () => document.removeEventListener("keydown", keys));
    });
    box.init();
  }
}

function map() {
  const element = document.getElementById("map");
  if (!element || !window.L) return;
  const points = JSON.parse(element.dataset.points || "[]");
  if (!points.length) return;
  const view = window.L.map(element).setView([points[0][1], points[0][2]], 15);
  const tiles = element.dataset.tiles;
  if (tiles && navigator.onLine) {  // tiles only when online; the coordinates are text anyway
    window.L.tileLayer(tiles, {
      maxZoom: 19, attribution: "&copy; OpenStreetMap",
    }).addTo(view);
  }
  for (const [name, lat, lon] of points) {
    const label = document.createElement("span");
    label.textContent = name;  // a form's label is text, never markup (Leaflet parses strings)
    window.L.marker([lat, lon]).addTo(view).bindPopup(label);
  }
}

// Reviews must carry a comment for "has issues" and "reject", and a bulk review needs rows:
// refuse before sending, so the page (and the rows ticked) stay as they are.
// The message stays until the next change on the page (a typed comment, a row ticked).
function refuse(field, message) {
  field.setCustomValidity(message || "");
  field.reportValidity();
  const clear = () => field.setCustomValidity("");
  for (const kind of ["input", "change"]) document.addEventListener(kind, clear, { once: true });
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.classList.contains("review") && event.submitter) {
    const comment = form.querySelector("textarea");
    if (event.submitter.value !== "approved" && comment && !comment.value.trim()) {
      event.preventDefault();
      refuse(comment, comment.dataset.required);
    }
  } else if (form.id === "bulk") {
    const comment = form.querySelector("[name=comment]");
    const ticked = document.querySelectorAll("input[name=ids][form=bulk]:checked").length;
    if (!ticked) {
      event.preventDefault();
      refuse(form.querySelector("button[type=submit]"), form.dataset.none);
    } else if (form.elements.state.value !== "approved" && !comment.value.trim()) {
      event.preventDefault();
      refuse(comment, comment.dataset.required);
    }
  }
}, true);

// Export links follow the "approved only" switch.
for (const link of document.querySelectorAll("a[data-export]")) {
  link.addEventListener("click", () => {
    const url = new URL(link.href, location.href);
    const approved = document.querySelector("#export-options input[name=approvedOnly]");
    if (approved && approved.checked) url.searchParams.set("approvedOnly", "true");
    else url.searchParams.delete("approvedOnly");
    link.href = url.toString();
  });
}

lightbox();
map();

// The submissions list's filters are always shown on a wide screen (app.css opens them with
// ::details-content); a browser without it gets them opened here.
if (!CSS.supports("selector(::details-content)") && matchMedia("(min-width: 760px)").matches) {
  for (const box of document.querySelectorAll("details.filter-box")) box.open = true;
}
