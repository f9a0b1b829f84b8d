"""`{% fragment "name" value ... %}…{% endfragment %}`: the enclosed HTML, cached under a key made
from the values it shows (see alliance_app.dashboards.fragments).

Pass every value the enclosed part reads: its rows, the viewer's rights, the address when links
or forms carry it. The language, the time zone and the templates' text are always in
the key.

The CSRF token is never cached: the part is rendered with a placeholder in its place, and each
request's own token is put into the HTML when it is served. Forms inside stay plain forms.
"""

from django import template

from alliance_app.dashboards import fragments

register = template.Library()

# Letters only, so escaping leaves it as it is; the token itself is letters and digits.
CSRF_PLACEHOLDER = "csrfTokenPlaceholderXfragmentQ"


class FragmentNode(template.Node):
    def __init__(self, nodelist, name, values):
        self.nodelist = nodelist
        self.name = name
        self.values = values

    def render(self, context):
        values = [value.resolve(context) for value in self.values]
        key = fragments.fingerprint(*values)
        html = fragments.cached(self.name.resolve(context), key, lambda: self._build(context))
        if CSRF_PLACEHOLDER in html:
            html = html.replace(CSRF_PLACEHOLDER, str(context.get("csrf_token", "")))
        return html

    def _build(self, context) -> str:
        with context.push(csrf_token=CSRF_PLACEHOLDER):
            return self.nodelist.render(context)


@register.tag
def fragment(parser, token):
    bits = token.split_contents()
    if len(bits) < 2:
        raise template.TemplateSyntaxError("{% fragment %} needs a name")
    nodelist = parser.parse(("endfragment",))
    parser.delete_first_token()
    return FragmentNode(
        nodelist,
        parser.compile_filter(bits[1]),
        [parser.compile_filter(bit) for bit in bits[2:]],
    )
