"""Recursive-descent parser: tokens -> syntax tree (`nodes`).

Grammar (see docs/query-language.md)::

    expr      := and (("or" | "||") and)*
    and       := unary (("and" | "&&") unary)*
    unary     := ("not" | "!") unary | "(" expr ")" | predicate
    predicate := field op value
               | field ["not"] "in" "(" value ("," value)* ")"
               | field ["not"] ("contains" | "startswith" | "endswith") value
               | "exists" "(" field ")"
               | ("has_parent" | "has_child" | "has_ancestor" | "has_descendant") "(" expr ")"
               | boolean-field                       (`is_root` alone means is_root = true)

Every error names what was expected and points at the first bad token.
"""

from __future__ import annotations

import difflib

from agtrace.errors import ExpressionError
from agtrace.query import lexer as L
from agtrace.query import nodes as N
from agtrace.query.fields import BOOL, Field, FieldNameError, resolve

MAX_DEPTH = 64  # nesting of parentheses / not / functions; deeper is surely a mistake

_WORD_OPS = ("contains", "startswith", "endswith")
_NOT_A_FIELD = {"and", "or", "in", "contains", "startswith", "endswith", "true", "false", "nil", "null"}
_OPERATOR_WORDS = ("in", "not", "contains", "startswith", "endswith")
OPERATORS_HINT = "operators: = != > >= < <= =~ !~ contains startswith endswith in, not in"


def parse(text: str) -> N.Node | None:
    """Parse a filter expression; None for an empty one. Raises ExpressionError."""
    return _Parser(text).parse()


def parse_field(text: str) -> Field:
    """Parse a lone field name (for --by, -c, --sort). Raises ExpressionError."""
    tokens = L.tokenize(text)
    tok = tokens[0]
    if tok.kind != L.WORD:
        raise ExpressionError("expected a field name", text, tok.pos)
    if tokens[1].kind != L.EOF:
        raise ExpressionError(f"expected a single field name, found {tokens[1].describe()}", text, tokens[1].pos)
    return _Parser(text, tokens).field(tok)


class _Parser:
    def __init__(self, text: str, tokens: list[L.Token] | None = None):
        self.text = text
        self.tokens = tokens if tokens is not None else L.tokenize(text)
        self.i = 0
        self.depth = 0

    # -- helpers -------------------------------------------------------------
    def peek(self, k: int = 0) -> L.Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def prev(self) -> L.Token | None:
        return self.tokens[self.i - 1] if self.i > 0 else None

    def advance(self) -> L.Token:
        tok = self.tokens[self.i]
        if tok.kind != L.EOF:
            self.i += 1
        return tok

    def error(self, message: str, tok: L.Token, hint: str | None = None) -> ExpressionError:
        return ExpressionError(message, self.text, tok.pos, hint)

    def is_kw(self, tok: L.Token, *words: str) -> bool:
        return tok.keyword in words

    def enter(self, tok: L.Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested too deeply (more than {MAX_DEPTH} levels)", tok)

    # -- grammar -------------------------------------------------------------
    def parse(self) -> N.Node | None:
        if self.peek().kind == L.EOF:
            return None
        node = self.or_expr()
        tok = self.peek()
        if tok.kind == L.RPAREN:
            raise self.error("unbalanced parentheses: ')' without a matching '('", tok)
        if tok.kind != L.EOF:
            raise self.error(f"expected 'and', 'or' or the end of the expression, found {tok.describe()}", tok,
                             hint="join conditions with and / or")
        return node

    def or_expr(self) -> N.Node:
        items = [self.and_expr()]
        while self.peek().kind == L.OR or self.is_kw(self.peek(), "or"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else N.Or(tuple(items))

    def and_expr(self) -> N.Node:
        items = [self.unary()]
        while self.peek().kind == L.AND or self.is_kw(self.peek(), "and"):
            self.advance()
            items.append(self.unary())
        return items[0] if len(items) == 1 else N.And(tuple(items))

    def unary(self) -> N.Node:
        tok = self.peek()
        if tok.kind == L.BANG or self.is_kw(tok, "not"):
            self.enter(tok)
            self.advance()
            node = N.Not(self.unary(), pos=tok.pos)
            self.depth -= 1
            return node
        if tok.kind == L.LPAREN:
            self.enter(tok)
            self.advance()
            node = self.or_expr()
            self.close(tok)
            self.depth -= 1
            return node
        return self.predicate()

    def close(self, lparen: L.Token) -> None:
        tok = self.peek()
        if tok.kind == L.RPAREN:
            self.advance()
            return
        if tok.kind == L.EOF:
            raise self.error("unbalanced parentheses: '(' is never closed", lparen)
        raise self.error(f"expected 'and', 'or' or ')', found {tok.describe()}", tok)

    def no_condition(self, tok: L.Token) -> ExpressionError:
        prev = self.prev()
        if tok.kind == L.RPAREN and not any(t.kind == L.LPAREN for t in self.tokens[:self.i]):
            return self.error("unbalanced parentheses: ')' without a matching '('", tok)
        hint = None
        if tok.kind == L.STRING:
            hint = 'a quoted attribute name needs a scope: span."my key"'
        if prev is not None:
            return self.error(f"expected a condition after '{prev.text}'", tok, hint)
        return self.error(f"expected a condition, found {tok.describe()}", tok, hint)

    def predicate(self) -> N.Node:
        tok = self.peek()
        if tok.kind != L.WORD:
            raise self.no_condition(tok)
        if self.peek(1).kind == L.LPAREN:
            return self.function(tok)
        kw = tok.keyword
        if kw in _NOT_A_FIELD:
            raise self.no_condition(tok)
        if kw in N.FUNCTIONS:
            raise self.error(f"expected '(' after '{tok.text}'", self.peek(1))
        fld = self.field(tok)
        self.advance()
        return self.after_field(fld, tok)

    def field(self, tok: L.Token) -> Field:
        parts, leading_dot = tok.value
        try:
            return resolve(list(parts), leading_dot, text=tok.text, pos=tok.pos)
        except FieldNameError as exc:
            raise self.error(exc.message, tok, exc.hint) from None

    def after_field(self, fld: Field, ftok: L.Token) -> N.Node:
        tok = self.peek()
        if tok.kind == L.OP:
            self.advance()
            op = "=" if tok.text == "==" else tok.text
            value = self.value(tok)
            return N.Compare(fld, op, value, pos=ftok.pos, op_text=tok.text, op_pos=tok.pos)
        negated = False
        op_tok = tok
        if self.is_kw(tok, "not") and self.peek(1).keyword in ("in",) + _WORD_OPS:
            self.advance()
            negated = True
            op_tok = self.peek()
        if self.is_kw(op_tok, "in"):
            self.advance()
            return self.in_list(fld, ftok, op_tok, negated)
        if op_tok.keyword in _WORD_OPS:
            self.advance()
            op = ("not " if negated else "") + op_tok.keyword
            value = self.value(op_tok)
            return N.Compare(fld, op, value, pos=ftok.pos, op_text=op, op_pos=tok.pos)
        ends = tok.kind in (L.EOF, L.RPAREN, L.AND, L.OR) or self.is_kw(tok, "and", "or")
        col = fld.column
        if ends and col is not None and col.kind == BOOL:
            return N.Compare(fld, "=", N.Literal(N.BOOL, True, "true", ftok.pos), pos=ftok.pos, op_text="=")
        hint = OPERATORS_HINT
        if tok.kind == L.WORD and tok.keyword:
            close = difflib.get_close_matches(tok.keyword, _OPERATOR_WORDS, n=1, cutoff=0.7)
            if close:
                hint = f"did you mean {close[0]}?"
        if tok.kind == L.LPAREN:
            hint = "functions are written on their own: exists(field), has_parent(condition), ..."
        raise self.error(f"expected an operator after '{ftok.text}'", tok, hint)

    def value(self, after: L.Token) -> N.Literal:
        tok = self.peek()
        if tok.kind == L.STRING:
            self.advance()
            return N.Literal(N.STRING, tok.value, tok.text, tok.pos)
        if tok.kind == L.NUMBER:
            self.advance()
            return N.Literal(N.NUMBER, tok.value, tok.text, tok.pos)
        if tok.kind == L.DURATION:
            self.advance()
            return N.Literal(N.DURATION, tok.value, tok.text, tok.pos)
        if tok.kind == L.BARE:
            self.advance()
            return N.Literal(N.WORD, tok.text, tok.text, tok.pos)
        if tok.kind == L.WORD and self.peek(1).kind == L.LPAREN:
            raise self.error(f"expected a value after '{after.text}'", tok,
                             hint="a value is a string, a number, a duration, true, false or nil")
        if tok.kind == L.WORD and tok.keyword is not None:
            kw = tok.keyword
            if kw in ("and", "or", "not", "in"):
                raise self.error(f"expected a value after '{after.text}'", tok)
            self.advance()
            if kw in ("true", "false"):
                return N.Literal(N.BOOL, kw == "true", tok.text, tok.pos)
            if kw in ("nil", "null"):
                return N.Literal(N.NIL, None, tok.text, tok.pos)
            if kw in ("error", "ok", "unset"):
                return N.Literal(N.STRING, kw, tok.text, tok.pos)
            return N.Literal(N.WORD, tok.text, tok.text, tok.pos)
        hint = None
        if tok.kind == L.WORD:
            hint = f'comparing two fields is not supported; to compare with the text, quote it: "{tok.text}"'
        raise self.error(f"expected a value after '{after.text}'", tok, hint)

    def in_list(self, fld: Field, ftok: L.Token, in_tok: L.Token, negated: bool) -> N.Node:
        lp = self.peek()
        if lp.kind != L.LPAREN:
            raise self.error(f"expected '(' after '{in_tok.text}'", lp, hint='write: field in ("a", "b")')
        self.advance()
        values = [self.value(lp)]
        while True:
            tok = self.peek()
            if tok.kind == L.COMMA:
                self.advance()
                values.append(self.value(tok))
                continue
            if tok.kind == L.RPAREN:
                self.advance()
                break
            if tok.kind == L.EOF:
                raise self.error("unbalanced parentheses: '(' is never closed", lp)
            raise self.error(f"expected ',' or ')' in the list, found {tok.describe()}", tok)
        return N.InList(fld, tuple(values), negated, pos=ftok.pos)

    def function(self, tok: L.Token) -> N.Node:
        name = tok.text
        low = name.lower()
        if low not in N.FUNCTIONS:
            close = difflib.get_close_matches(low, N.FUNCTIONS, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else "functions: " + ", ".join(N.FUNCTIONS)
            raise self.error(f"unknown function '{name}'", tok, hint)
        self.enter(tok)
        self.advance()
        lp = self.advance()
        if low == "exists":
            ftok = self.peek()
            if ftok.kind != L.WORD or ftok.keyword in _NOT_A_FIELD or ftok.keyword in N.FUNCTIONS:
                if ftok.kind == L.EOF:
                    raise self.error("unbalanced parentheses: '(' is never closed", lp)
                raise self.error(f"expected a field name after '{name}('", ftok)
            fld = self.field(ftok)
            self.advance()
            rp = self.peek()
            if rp.kind == L.EOF:
                raise self.error("unbalanced parentheses: '(' is never closed", lp)
            if rp.kind != L.RPAREN:
                raise self.error(f"expected ')' after the field name, found {rp.describe()}", rp,
                                 hint="exists() takes one field name: exists(gen_ai.usage.input_tokens)")
            self.advance()
            self.depth -= 1
            return N.Exists(fld, pos=tok.pos)
        node = self.or_expr()
        self.close(lp)
        self.depth -= 1
        return N.Structural(low, node, pos=tok.pos)
