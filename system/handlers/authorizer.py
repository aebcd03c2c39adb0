"""The chat's optional $connect authorizer: an HS256 JSON Web Token in the query string.

API Gateway runs it as a Lambda REQUEST authorizer before $connect (routes file:
``[authorizers.jwt]``, attached with ``--authorizer jwt``); the reference client sends
its login token as ``?Authorization=<token>``. The key is ``JWT_SECRET`` from the
function's environment. A token signed with it, with a ``sub`` and an unexpired
``exp``, is allowed: ``sub`` becomes the principal, which every route then sees as
``requestContext.authorizer.principalId`` (the chat shows it as the sender's name).
A token that does not verify is denied (API Gateway answers 403); an expired one
raises "Unauthorized" (API Gateway's 401: log in again).
"""

from __future__ import annotations

import os
import time

import jwt

ALGORITHM = "HS256"
TOKEN_PARAMETER = "Authorization"
DEFAULT_TOKEN_LIFETIME_S = 3600


class Unauthorized(Exception):
    """Raised with the message "Unauthorized": API Gateway then answers 401."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def mint_token(secret: str, subject: str, *, name: str | None = None,
               lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S, now: float | None = None) -> str:
    """A token this authorizer accepts for ``subject`` (load tests mint one per user;
    ``chat-harness token`` prints one); a negative ``lifetime_s`` makes an expired one."""
    issued = int(time.time() if now is None else now)
    claims = {"sub": subject, "iat": issued, "exp": issued + int(lifetime_s)}
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def policy(principal: str, effect: str, resource: str, context: dict | None = None) -> dict:
    answer = {"principalId": principal, "policyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
    }}
    if context:
        answer["context"] = context
    return answer


def lambda_handler(event: dict, context) -> dict:
    token = (event.get("queryStringParameters") or {}).get(TOKEN_PARAMETER, "")
    try:
        claims = jwt.decode(token.removeprefix("Bearer "), os.environ["JWT_SECRET"],
                            algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized from None
    except jwt.InvalidTokenError as error:
        print(f"denied: {error}")
        return policy("anonymous", "Deny", event["methodArn"])
    return policy(claims["sub"], "Allow", event["methodArn"],
                  {"user": claims.get("name") or claims["sub"]})
