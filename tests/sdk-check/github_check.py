"""PyGithub against the fake GitHub: a GitHub App's installation and its token, and the pull
request calls threadsmith makes (list by head, create)."""

import github
from github import Auth, Github, GithubException, GithubIntegration

from checks import check, done, env, raises, step

api = env("GITHUB_API_URL")
token = env("GITHUB_TOKEN")
app_id = int(env("GITHUB_APP_ID"))
installation_id = int(env("GITHUB_INSTALLATION_ID"))
key = open(env("GITHUB_APP_PRIVATE_KEY_PATH")).read()
full_name = env("GITHUB_REPO").split("=")[0]
owner, name = full_name.split("/")
print("PyGithub", github.__version__ if hasattr(github, "__version__") else "", "->", api)

integration = GithubIntegration(auth=Auth.AppAuth(app_id, key), base_url=api)
inst = step("get_repo_installation parses as an Installation", lambda: integration.get_repo_installation(owner, name))
if inst:
    check("the installation is the App's", inst.id == installation_id and inst.app_id == app_id)
raises(
    "get_repo_installation of an unknown repository: UnknownObjectException 404",
    github.UnknownObjectException,
    lambda: integration.get_repo_installation(owner, "nothing-here"),
    lambda e: e.status == 404,
)
minted = step("get_access_token parses", lambda: integration.get_access_token(installation_id))
if minted:
    check("the installation token has its expiry", minted.token.startswith("ghs_") and minted.expires_at is not None)

for label, auth in [("a personal token", Auth.Token(token))] + (
    [("the installation token", Auth.Token(minted.token))] if minted else []
):
    gh = Github(auth=auth, base_url=api, lazy=True)
    repo = gh.get_repo(full_name)
    pulls = step(f"get_pulls by head ({label})", lambda: list(repo.get_pulls(state="all", head=f"{owner}:threadsmith/demo")))
    if pulls is not None and not pulls:
        pr = step(
            "create_pull parses as a PullRequest",
            lambda: repo.create_pull(
                title="Fix it", body="Made by threadsmith", head="threadsmith/demo", base="main", draft=True,
                maintainer_can_modify=True,
            ),
        )
        if pr:
            check("the pull request is open, a draft, from the branch", pr.state == "open" and pr.draft and pr.head.ref == "threadsmith/demo")
            check("its html_url is GitHub's", pr.html_url.endswith(f"/{full_name}/pull/{pr.number}"))
            check("it counts its commits", pr.commits == 1, pr.raw_data.get("commits"))
            check("its base is main at main's commit, not the head's", pr.base.ref == "main" and pr.base.sha != pr.head.sha)
        raises(
            "create_pull again: GithubException 422 'A pull request already exists'",
            GithubException,
            lambda: repo.create_pull(title="Fix it", body="", head="threadsmith/demo", base="main"),
            lambda e: e.status == 422 and "already exists" in str(e.data),
        )
    elif pulls:
        check("the pull request opened earlier is listed", pulls[0].head.ref == "threadsmith/demo")

gh = Github(auth=Auth.Token(token), base_url=api, lazy=True)
repo = gh.get_repo(full_name)
raises(
    "create_pull from a branch that does not exist: 422 head invalid",
    GithubException,
    lambda: repo.create_pull(title="x", body="", head="no-such-branch", base="main"),
    lambda e: e.status == 422 and any(x.get("field") == "head" for x in e.data.get("errors", [])),
)
raises(
    "create_pull with nothing between base and head: 422 'No commits between'",
    GithubException,
    lambda: repo.create_pull(title="x", body="", head="main", base="main"),
    lambda e: e.status == 422 and "No commits between" in str(e.data),
)
raises(
    "get_pulls of an unknown repository: UnknownObjectException 404",
    github.UnknownObjectException,
    lambda: list(gh.get_repo(f"{owner}/nothing-here").get_pulls()),
    lambda e: e.status == 404,
)
raises(
    "a bad token: BadCredentialsException 401",
    github.BadCredentialsException,
    lambda: list(Github(auth=Auth.Token("ghp_wrong"), base_url=api, lazy=True).get_repo(full_name).get_pulls()),
    lambda e: e.status == 401,
)
done("github")
