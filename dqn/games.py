"""The 49 Atari games of the Nature paper, by ALE ROM id, and the check of a game name."""

from __future__ import annotations

import difflib

from dqn.errors import UserError

# (ALE id, display name as printed in Extended Data Table 2), in the table's order.
PAPER_GAMES: tuple[tuple[str, str], ...] = (
    ("alien", "Alien"),
    ("amidar", "Amidar"),
    ("assault", "Assault"),
    ("asterix", "Asterix"),
    ("asteroids", "Asteroids"),
    ("atlantis", "Atlantis"),
    ("bank_heist", "Bank Heist"),
    ("battle_zone", "Battle Zone"),
    ("beam_rider", "Beam Rider"),
    ("bowling", "Bowling"),
    ("boxing", "Boxing"),
    ("breakout", "Breakout"),
    ("centipede", "Centipede"),
    ("chopper_command", "Chopper Command"),
    ("crazy_climber", "Crazy Climber"),
    ("demon_attack", "Demon Attack"),
    ("double_dunk", "Double Dunk"),
    ("enduro", "Enduro"),
    ("fishing_derby", "Fishing Derby"),
    ("freeway", "Freeway"),
    ("frostbite", "Frostbite"),
    ("gopher", "Gopher"),
    ("gravitar", "Gravitar"),
    ("hero", "H.E.R.O."),
    ("ice_hockey", "Ice Hockey"),
    ("jamesbond", "James Bond"),
    ("kangaroo", "Kangaroo"),
    ("krull", "Krull"),
    ("kung_fu_master", "Kung-Fu Master"),
    ("montezuma_revenge", "Montezuma's Revenge"),
    ("ms_pacman", "Ms. Pacman"),
    ("name_this_game", "Name This Game"),
    ("pong", "Pong"),
    ("private_eye", "Private Eye"),
    ("qbert", "Q*Bert"),
    ("riverraid", "River Raid"),
    ("road_runner", "Road Runner"),
    ("robotank", "Robotank"),
    ("seaquest", "Seaquest"),
    ("space_invaders", "Space Invaders"),
    ("star_gunner", "Star Gunner"),
    ("tennis", "Tennis"),
    ("time_pilot", "Time Pilot"),
    ("tutankham", "Tutankham"),
    ("up_n_down", "Up and Down"),
    ("venture", "Venture"),
    ("video_pinball", "Video Pinball"),
    ("wizard_of_wor", "Wizard of Wor"),
    ("zaxxon", "Zaxxon"),
)
PAPER_GAME_IDS: tuple[str, ...] = tuple(ale_id for ale_id, _ in PAPER_GAMES)
DISPLAY_NAMES: dict[str, str] = dict(PAPER_GAMES)


def ale_rom_ids() -> tuple[str, ...]:
    """Every ROM id that the installed ale-py ships."""
    from ale_py.roms import get_all_rom_ids

    return tuple(get_all_rom_ids())


def check_game(game: str) -> str:
    """Return the ALE id of `game` (case and '-' tolerated), or raise a UserError listing the valid ones.

    Any ROM that ale-py ships is accepted; the paper's 49 are the ones the error message lists.
    """
    ale_id = game.strip().lower().replace("-", "_")
    if ale_id in DISPLAY_NAMES or ale_id in ale_rom_ids():
        return ale_id
    # A high cutoff: a typo gets its game, a wrong name the whole list rather than a far guess.
    close = difflib.get_close_matches(ale_id, sorted(set(DISPLAY_NAMES) | set(ale_rom_ids())), n=1, cutoff=0.8)
    if close:
        raise UserError(f"unknown game {game!r} (did you mean {close[0]!r}?); use an ALE ROM id")
    raise UserError(
        f"unknown game {game!r}; use an ALE ROM id, e.g. one of the paper's 49: {', '.join(PAPER_GAME_IDS)}"
    )


def display_name(ale_id: str) -> str:
    return DISPLAY_NAMES.get(ale_id, ale_id.replace("_", " ").title())
